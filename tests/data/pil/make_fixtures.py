#!/usr/bin/python3
# Regenerates the PIL reference fixtures in this folder (run with Debian's /usr/bin/python3,
# python3-pil 9.4 + python3-numpy). The data-stage tests check repq's decoders and
# preprocessing against these files bit for bit.
import numpy as np
from PIL import Image

rng = np.random.default_rng(7)
# A smooth gradient plus noise, odd size, so chroma upsampling and resampling edges matter.
y, x = np.mgrid[0:23, 0:37]
rgb = np.stack([x * 6, y * 9, 128 + 40 * np.sin(x / 3.0) * np.cos(y / 4.0)], axis=-1)
rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
Image.fromarray(rgb, 'RGB').save('rgb420.jpg', quality=90)  # PIL's default 4:2:0
cmyk = np.clip(np.concatenate([rgb, rgb[..., :1] // 2], axis=-1), 0, 255).astype(np.uint8)
Image.fromarray(cmyk, 'CMYK').save('cmyk.jpg', quality=90)

def save_npy(name, a):
    np.save(name, np.ascontiguousarray(a))

for name in ['rgb420', 'cmyk']:
    save_npy(name + '_decoded.npy', np.asarray(Image.open(name + '.jpg').convert('RGB')))

mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)

def prep(im, short, crop, resample, torchvision):
    w, h = im.size
    s, l = min(w, h), max(w, h)
    L = int(short * l / s) if torchvision else round(short * l / s)
    nw, nh = (L, short) if w >= h else (short, L)
    im = im.resize((nw, nh), resample)
    if torchvision:
        x0, y0 = int(round((nw - crop) / 2.0)), int(round((nh - crop) / 2.0))
    else:
        x0, y0 = (nw - crop) // 2, (nh - crop) // 2
    a = np.asarray(im.crop((x0, y0, x0 + crop, y0 + crop))).astype(np.float32).transpose(2, 0, 1)
    return (a / np.float32(255) - mean) / std

im = Image.open('rgb420.jpg').convert('RGB')
# 37x23 -> short side 20: long side 32.17 -> 32; crop 16 at (8, 2)
save_npy('rgb420_r20_c16_bilinear.npy', prep(im, 20, 16, Image.BILINEAR, False))
# torchvision rounding, bicubic, upscaling: short side 30 -> 48.26 -> 48; crop 25 at round(11.5) = 12
save_npy('rgb420_r30_c25_bicubic_tv.npy', prep(im, 30, 25, Image.BICUBIC, True))
