"""Re-parameterizable blocks, each with a training form and a fused deploy form.

Every block keeps its branches while training; ``switch_to_deploy()`` computes
the single equivalent conv (kernel and bias) in PyTorch and replaces the
branches with it.  The maths follows the public reference implementations
(RepVGG, QARepVGG / YOLOv6, MobileOne, ACNet, DBB), written here from the
formulas, not copied:

* conv -> BN:           W' = W * t,  b' = beta + (b - mean) * t,  t = gamma / sqrt(var + eps)
* 1x1 / 1x3 / 3x1:      zero-padded to 3x3 around the centre
* identity:             one-hot 3x3 kernel W[o, o mod (C/groups), 1, 1] = 1
* AvgPool(3, s, 1):     1/9 on every tap of the diagonal channel pairs
* 1x1 then kxk chain:   W = W_kxk contracted with W_1x1 over the middle channels,
                        bias b2 + sum(W_kxk * b1)
* branch sum:           add kernels and biases
* post-sum BN (QARepVGG): fold into the summed kernel and bias.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, kernel, stride, padding, groups=1):
    """Conv (no bias) followed by BatchNorm, named conv / bn like the reference code."""
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding,
                                     groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(cout))
    return seq


def bn_factor(bn):
    """t = gamma / sqrt(running_var + eps), per channel."""
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


def fold_bn(kernel, bias, bn):
    """Fold an inference-mode BatchNorm that follows a conv with (kernel, bias)."""
    t = bn_factor(bn)
    if bias is None:
        bias = torch.zeros_like(bn.running_mean)
    return kernel * t.reshape(-1, 1, 1, 1), bn.bias + (bias - bn.running_mean) * t


def pad_to(kernel, size):
    """Zero-pad a [O, I, kh, kw] kernel symmetrically to size x size."""
    ph = (size - kernel.shape[2]) // 2
    pw = (size - kernel.shape[3]) // 2
    return F.pad(kernel, [pw, pw, ph, ph])


def identity_kernel(channels, groups, size, like):
    """The kxk kernel of the identity map on `channels` channels (groups-aware)."""
    per_group = channels // groups
    k = torch.zeros(channels, per_group, size, size, dtype=like.dtype, device=like.device)
    idx = torch.arange(channels)
    k[idx, idx % per_group, size // 2, size // 2] = 1.0
    return k


def avgpool_kernel(channels, groups, size, like):
    """The kxk kernel of AvgPool(k, count_include_pad=True) (groups-aware)."""
    per_group = channels // groups
    k = torch.zeros(channels, per_group, size, size, dtype=like.dtype, device=like.device)
    idx = torch.arange(channels)
    k[idx, idx % per_group, :, :] = 1.0 / (size * size)
    return k


def chain_1x1_kxk(k1, b1, k2, b2):
    """Compose conv1x1 (k1 [M, I, 1, 1], b1 [M]) then convkxk (k2 [O, M, k, k], b2 [O]).

    Only groups == 1.  Exact when the 1x1 conv carries the padding of the pair
    (see DBBBlock), so that the border of its output equals b1.
    """
    k = torch.einsum("omhw,mi->oihw", k2, k1[:, :, 0, 0])
    b = b2 + (k2 * b1.reshape(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    return k, b


class RepBlockBase(nn.Module):
    """Common deploy switch: subclasses implement equivalent_kernel_bias()."""

    def __init__(self, cin, cout, kernel, stride, padding, groups):
        super().__init__()
        self.cin, self.cout, self.kernel = cin, cout, kernel
        self.stride, self.padding, self.groups = stride, padding, groups
        self.act = nn.ReLU()
        self.deployed = False

    def equivalent_kernel_bias(self):
        raise NotImplementedError

    def forward_branches(self, x):
        raise NotImplementedError

    def forward(self, x):
        if self.deployed:
            return self.act(self.reparam(x))
        return self.act(self.forward_branches(x))

    @torch.no_grad()
    def switch_to_deploy(self):
        if self.deployed:
            return
        kernel, bias = self.equivalent_kernel_bias()
        conv = nn.Conv2d(self.cin, self.cout, self.kernel, self.stride, self.padding,
                         groups=self.groups, bias=True)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        for name in list(self._modules):
            if name != "act":
                delattr(self, name)
        self.reparam = conv
        self.deployed = True

    def identity_bn_factor(self):
        """Largest |gamma/sqrt(var+eps)| of the identity BN, or None."""
        return None


class RepVGGBlock(RepBlockBase):
    """RepVGG: 3x3 conv+BN + 1x1 conv+BN + identity BN (when shapes allow), ReLU."""

    def __init__(self, cin, cout, stride=1, groups=1):
        super().__init__(cin, cout, 3, stride, 1, groups)
        self.rbr_dense = conv_bn(cin, cout, 3, stride, 1, groups)
        self.rbr_1x1 = conv_bn(cin, cout, 1, stride, 0, groups)
        self.rbr_identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None

    def forward_branches(self, x):
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return out

    def equivalent_kernel_bias(self):
        k3, b3 = fold_bn(self.rbr_dense.conv.weight, None, self.rbr_dense.bn)
        k1, b1 = fold_bn(self.rbr_1x1.conv.weight, None, self.rbr_1x1.bn)
        k, b = k3 + pad_to(k1, 3), b3 + b1
        if self.rbr_identity is not None:
            kid = identity_kernel(self.cin, self.groups, 3, k3)
            kid, bid = fold_bn(kid, None, self.rbr_identity)
            k, b = k + kid, b + bid
        return k, b

    def custom_l2(self):
        """RepVGG's optional custom L2 (get_custom_L2 in the reference code).

        Ordinary L2 on the 8 outer taps ("ring") of the 3x3 kernel; on the
        centre, L2 of the equivalent fused centre (3x3 centre * t3 + 1x1 * t1),
        normalised by (t3^2 + t1^2) so its coefficient is comparable to plain
        L2.  The BN factors are treated as constants (detached).  Weight decay
        must then be switched off for these conv weights.
        """
        k3 = self.rbr_dense.conv.weight
        k1 = self.rbr_1x1.conv.weight
        t3 = bn_factor(self.rbr_dense.bn).detach().reshape(-1, 1, 1, 1)
        t1 = bn_factor(self.rbr_1x1.bn).detach().reshape(-1, 1, 1, 1)
        centre = k3[:, :, 1:2, 1:2]
        ring = (k3 ** 2).sum() - (centre ** 2).sum()
        eq_centre = centre * t3 + k1 * t1
        return ring + (eq_centre ** 2 / (t3 ** 2 + t1 ** 2)).sum()

    def identity_bn_factor(self):
        if self.deployed or self.rbr_identity is None:
            return None
        return float(bn_factor(self.rbr_identity).abs().max())


class QARepVGGBlock(RepBlockBase):
    """QARepVGG (S4): 3x3 conv+BN + 1x1 conv (no BN, no bias) + bare identity,
    one BN after the sum, then ReLU.  With avg=True this is QARepVGGBlockV2
    (YOLOv6): an extra AvgPool(3, 1, 1, count_include_pad=True) branch when the
    identity exists."""

    def __init__(self, cin, cout, stride=1, groups=1, avg=False):
        super().__init__(cin, cout, 3, stride, 1, groups)
        self.rbr_dense = conv_bn(cin, cout, 3, stride, 1, groups)
        self.rbr_1x1 = nn.Conv2d(cin, cout, 1, stride, 0, groups=groups, bias=False)
        has_id = cin == cout and stride == 1
        self.rbr_identity = nn.Identity() if has_id else None
        self.rbr_avg = (nn.AvgPool2d(3, 1, 1, count_include_pad=True)
                        if (avg and has_id) else None)
        self.bn = nn.BatchNorm2d(cout)

    def forward_branches(self, x):
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        if self.rbr_avg is not None:
            out = out + self.rbr_avg(x)
        return self.bn(out)

    def equivalent_kernel_bias(self):
        k, b = fold_bn(self.rbr_dense.conv.weight, None, self.rbr_dense.bn)
        k = k + pad_to(self.rbr_1x1.weight, 3)
        if self.rbr_identity is not None:
            k = k + identity_kernel(self.cin, self.groups, 3, k)
        if self.rbr_avg is not None:
            k = k + avgpool_kernel(self.cin, self.groups, 3, k)
        return fold_bn(k, b, self.bn)


class MobileOneBlock(RepBlockBase):
    """MobileOne: n parallel kxk conv+BN + a 1x1 conv+BN "scale" branch (k > 1)
    + identity BN (when shapes allow), ReLU.  Used depthwise (groups = C) and
    pointwise (k = 1)."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, branches=2):
        super().__init__(cin, cout, kernel, stride, kernel // 2, groups)
        self.rbr_skip = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.rbr_scale = conv_bn(cin, cout, 1, stride, 0, groups) if kernel > 1 else None
        self.rbr_conv = nn.ModuleList(
            [conv_bn(cin, cout, kernel, stride, kernel // 2, groups) for _ in range(branches)])

    def forward_branches(self, x):
        out = 0
        if self.rbr_skip is not None:
            out = self.rbr_skip(x)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        for branch in self.rbr_conv:
            out = out + branch(x)
        return out

    def equivalent_kernel_bias(self):
        like = self.rbr_conv[0].conv.weight
        k = torch.zeros_like(like)
        b = torch.zeros(self.cout, dtype=like.dtype)
        if self.rbr_skip is not None:
            kid, bid = fold_bn(identity_kernel(self.cin, self.groups, self.kernel, like),
                               None, self.rbr_skip)
            k, b = k + kid, b + bid
        if self.rbr_scale is not None:
            ks, bs = fold_bn(self.rbr_scale.conv.weight, None, self.rbr_scale.bn)
            k, b = k + pad_to(ks, self.kernel), b + bs
        for branch in self.rbr_conv:
            kc, bc = fold_bn(branch.conv.weight, None, branch.bn)
            k, b = k + kc, b + bc
        return k, b

    def identity_bn_factor(self):
        if self.deployed or self.rbr_skip is None:
            return None
        return float(bn_factor(self.rbr_skip).abs().max())


class ACBlock(RepBlockBase):
    """ACNet: 3x3 conv+BN + 1x3 conv+BN + 3x1 conv+BN, ReLU."""

    def __init__(self, cin, cout, stride=1, groups=1):
        super().__init__(cin, cout, 3, stride, 1, groups)
        self.square = conv_bn(cin, cout, (3, 3), stride, (1, 1), groups)
        self.hor = conv_bn(cin, cout, (1, 3), stride, (0, 1), groups)
        self.ver = conv_bn(cin, cout, (3, 1), stride, (1, 0), groups)

    def forward_branches(self, x):
        return self.square(x) + self.hor(x) + self.ver(x)

    def equivalent_kernel_bias(self):
        k, b = fold_bn(self.square.conv.weight, None, self.square.bn)
        for branch in (self.hor, self.ver):
            kb, bb = fold_bn(branch.conv.weight, None, branch.bn)
            k, b = k + pad_to(kb, 3), b + bb
        return k, b


class DBBBlock(RepBlockBase):
    """Diverse Branch Block (groups = 1), four branches summed, then ReLU:

    * origin:  3x3 conv+BN (stride s, pad 1)
    * 1x1:     1x1 conv+BN (stride s)
    * 1x1-3x3: 1x1 conv (pad 1, Dirac init) + BN, then 3x3 conv (stride s,
               pad 0) + BN.  Putting the padding on the 1x1 conv makes the
               border of the middle tensor equal the BN bias, exactly what the
               composed 3x3 conv with zero padding computes (the reference
               code gets the same effect with its BNAndPad layer).
    * avg:     AvgPool(3, s, 1, count_include_pad=True), then 1x1 conv+BN.
    """

    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, 3, stride, 1, 1)
        self.dbb_origin = conv_bn(cin, cout, 3, stride, 1)
        self.dbb_1x1 = conv_bn(cin, cout, 1, stride, 0)
        chain = nn.Sequential()
        chain.add_module("idconv1", nn.Conv2d(cin, cin, 1, 1, 1, bias=False))
        chain.add_module("bn1", nn.BatchNorm2d(cin))
        chain.add_module("conv2", nn.Conv2d(cin, cout, 3, stride, 0, bias=False))
        chain.add_module("bn2", nn.BatchNorm2d(cout))
        nn.init.dirac_(chain.idconv1.weight)
        self.dbb_1x1_kxk = chain
        avg = nn.Sequential()
        avg.add_module("pool", nn.AvgPool2d(3, stride, 1, count_include_pad=True))
        avg.add_module("conv", nn.Conv2d(cin, cout, 1, 1, 0, bias=False))
        avg.add_module("bn", nn.BatchNorm2d(cout))
        self.dbb_avg = avg

    def forward_branches(self, x):
        return (self.dbb_origin(x) + self.dbb_1x1(x) + self.dbb_1x1_kxk(x)
                + self.dbb_avg(x))

    def equivalent_kernel_bias(self):
        k, b = fold_bn(self.dbb_origin.conv.weight, None, self.dbb_origin.bn)
        k1, b1 = fold_bn(self.dbb_1x1.conv.weight, None, self.dbb_1x1.bn)
        k, b = k + pad_to(k1, 3), b + b1
        c = self.dbb_1x1_kxk
        ka, ba = fold_bn(c.idconv1.weight, None, c.bn1)
        kb, bb = fold_bn(c.conv2.weight, None, c.bn2)
        kc, bc = chain_1x1_kxk(ka, ba, kb, bb)
        k, b = k + kc, b + bc
        a = self.dbb_avg
        kavg = a.conv.weight.expand(-1, -1, 3, 3) / 9.0
        kavg, bavg = fold_bn(kavg, None, a.bn)
        return k + kavg, b + bavg
