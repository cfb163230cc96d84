// JPEG decoding with libjpeg-turbo, set up as PIL sets it up (ISLOW DCT, fancy upsampling:
// the library defaults), so decoded pixels are identical to PIL's.
//
// libjpeg reports fatal errors through error_exit, which must not return: we longjmp back
// to the one function that called setjmp. Only C frames (libjpeg's) lie between the two, and
// everything that function touches after setjmp lives behind a pointer, so no C++ object is
// skipped or left in an indeterminate state.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "data/codecs.h"
#include "repq/error.h"

namespace repq::data::detail {

namespace {

// Progressive JPEGs may hold any number of scans; each one re-reads the whole coefficient
// buffer, so a small file with thousands of scans is a cheap denial of service.
constexpr int kMaxScans = 1000;

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct Job {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  jpeg_progress_mgr progress;
  const unsigned char* data = nullptr;
  unsigned long size = 0;
  bool header_only = false;
  int64_t max_pixels = 0;
  // results
  bool over_limit = false;
  ImageInfo info;
  std::vector<uint8_t>* out = nullptr;  // raw decoded samples, info.channels per pixel
  int out_channels = 0;
  bool cmyk = false;
};

[[noreturn]] void fail(j_common_ptr cinfo, const char* text) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  std::snprintf(err->message, sizeof(err->message), "%s", text);
  std::longjmp(err->jump, 1);
}

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are ignored as PIL ignores them ("extraneous bytes before marker"),
// except a premature end of data, which PIL refuses as a truncated image.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    fail(cinfo, "truncated JPEG data (premature end of file)");
}

void on_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor) {
    auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (d->input_scan_number > kMaxScans) fail(cinfo, "too many progressive scans (corrupt or malicious file)");
  }
}

// Returns false on a libjpeg error, with the message in job->err.message.
bool run(Job* job) {
  jpeg_decompress_struct* cinfo = &job->cinfo;
  cinfo->err = jpeg_std_error(&job->err.pub);
  job->err.pub.error_exit = on_error;
  job->err.pub.emit_message = on_message;
  if (setjmp(job->err.jump)) {
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_create_decompress(cinfo);
  job->progress.progress_monitor = on_progress;
  cinfo->progress = &job->progress;
  jpeg_mem_src(cinfo, job->data, job->size);
  jpeg_read_header(cinfo, TRUE);
  job->info.format = ImageFormat::kJpeg;
  job->info.width = static_cast<int>(cinfo->image_width);
  job->info.height = static_cast<int>(cinfo->image_height);
  job->info.channels = cinfo->num_components;
  if (job->header_only) {
    jpeg_destroy_decompress(cinfo);
    return true;
  }
  if (job->max_pixels > 0 && static_cast<int64_t>(cinfo->image_width) *
                                     static_cast<int64_t>(cinfo->image_height) >
                                 job->max_pixels) {
    job->over_limit = true;
    jpeg_destroy_decompress(cinfo);
    return true;
  }
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo->out_color_space = JCS_CMYK; job->cmyk = true; break;
    default: cinfo->out_color_space = JCS_RGB; break;
  }
  jpeg_start_decompress(cinfo);
  job->out_channels = cinfo->output_components;
  const size_t row = static_cast<size_t>(cinfo->output_width) * cinfo->output_components;
  job->out->resize(row * cinfo->output_height);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW ptr = job->out->data() + row * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &ptr, 1);
  }
  jpeg_finish_decompress(cinfo);
  jpeg_destroy_decompress(cinfo);
  return true;
}

// PIL reads CMYK JPEGs as inverted ("CMYK;I", Adobe's convention) and converts to RGB with
// R = 255 - K' - C' (255 - K') / 255, in integers (Convert.c cmyk2rgb).
std::vector<uint8_t> cmyk_to_rgb(const std::vector<uint8_t>& in) {
  const size_t n = in.size() / 4;
  std::vector<uint8_t> out(n * 3);
  for (size_t i = 0; i < n; ++i) {
    const int nk = in[i * 4 + 3];  // 255 - inverted K
    for (int c = 0; c < 3; ++c) {
      const int v = 255 - in[i * 4 + c];
      const int tmp = v * nk + 128;
      const int mul = ((tmp >> 8) + tmp) >> 8;
      const int r = nk - mul;
      out[i * 3 + c] = static_cast<uint8_t>(r < 0 ? 0 : (r > 255 ? 255 : r));
    }
  }
  return out;
}

void start(Job& job, std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw InputError(name + ": empty file");
  std::memset(&job.cinfo, 0, sizeof(job.cinfo));
  std::memset(&job.err, 0, sizeof(job.err));
  std::memset(&job.progress, 0, sizeof(job.progress));
  job.data = reinterpret_cast<const unsigned char*>(bytes.data());
  job.size = static_cast<unsigned long>(bytes.size());
}

}  // namespace

ImageInfo jpeg_probe(std::string_view bytes, const std::string& name) {
  Job job;
  start(job, bytes, name);
  job.header_only = true;
  if (!run(&job)) throw InputError(name + ": not a readable JPEG: " + job.err.message);
  return job.info;
}

Image jpeg_decode(std::string_view bytes, const std::string& name, int64_t max_pixels) {
  std::vector<uint8_t> samples;
  Job job;
  start(job, bytes, name);
  job.max_pixels = max_pixels;
  job.out = &samples;
  if (!run(&job)) throw InputError(name + ": corrupt JPEG: " + job.err.message);
  if (job.over_limit) check_pixel_limit(job.info.width, job.info.height, max_pixels, name);
  Image img;
  img.width = job.info.width;
  img.height = job.info.height;
  if (job.cmyk) {
    img.channels = 3;
    img.pixels = cmyk_to_rgb(samples);
  } else {
    img.channels = job.out_channels;
    img.pixels = std::move(samples);
  }
  return img;
}

}  // namespace repq::data::detail
