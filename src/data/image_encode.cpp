// PNG (stb_image_write) and JPEG (libjpeg-turbo) encoders for fixtures and debug dumps.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <jpeglib.h>

#include "repq/data/image.h"
#include "repq/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace repq::data {

namespace {

void check_image(const Image& image) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 1 && image.channels != 3) ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * image.channels)
    throw InternalError("encode: malformed Image");
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void on_error(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<JpegErr*>(cinfo->err)->jump, 1); }

struct JpegJob {
  jpeg_compress_struct cinfo;
  JpegErr err;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
};

bool run_jpeg(JpegJob* job, const Image* image, int quality) {
  job->cinfo.err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = on_error;
  if (setjmp(job->err.jump)) {
    jpeg_destroy_compress(&job->cinfo);
    return false;
  }
  jpeg_create_compress(&job->cinfo);
  jpeg_mem_dest(&job->cinfo, &job->buffer, &job->size);
  job->cinfo.image_width = static_cast<JDIMENSION>(image->width);
  job->cinfo.image_height = static_cast<JDIMENSION>(image->height);
  job->cinfo.input_components = image->channels;
  job->cinfo.in_color_space = image->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&job->cinfo);
  jpeg_set_quality(&job->cinfo, quality, TRUE);
  jpeg_start_compress(&job->cinfo, TRUE);
  while (job->cinfo.next_scanline < job->cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image->pixels.data()) +
                   static_cast<size_t>(job->cinfo.next_scanline) * image->width * image->channels;
    jpeg_write_scanlines(&job->cinfo, &row, 1);
  }
  jpeg_finish_compress(&job->cinfo);
  jpeg_destroy_compress(&job->cinfo);
  return true;
}

}  // namespace

std::string encode_png(const Image& image) {
  check_image(image);
  std::string out;
  if (!stbi_write_png_to_func(append, &out, image.width, image.height, image.channels,
                              image.pixels.data(), image.width * image.channels))
    throw InternalError("encode_png failed");
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  check_image(image);
  JpegJob job;
  std::memset(&job.cinfo, 0, sizeof(job.cinfo));
  std::memset(&job.err, 0, sizeof(job.err));
  const bool ok = run_jpeg(&job, &image, quality < 1 ? 1 : (quality > 100 ? 100 : quality));
  std::string out;
  if (ok) out.assign(reinterpret_cast<const char*>(job.buffer), job.size);
  std::free(job.buffer);
  if (!ok) throw InternalError("encode_jpeg failed");
  return out;
}

}  // namespace repq::data
