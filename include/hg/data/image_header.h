#pragma once
/// The format and declared size of an encoded image, read from its first bytes without decoding
/// it, so that every reader (files, the server) refuses decompression bombs (a few kilobytes
/// declaring gigapixels) before any pixel buffer is allocated.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hg::data {

/// The encodings whose headers are read here (the server accepts only these).
enum class ImageFormat { kJpeg, kPng, kWebp };
/// "JPEG", "PNG", "WebP".
std::string format_name(ImageFormat format);

/// What an image's header declares.
struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  int64_t width = 0, height = 0;  ///< pixels
};

/// Thrown for bytes that are not one of the accepted formats (an HTTP server answers 415).
class UnsupportedImage : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Thrown for a JPEG, PNG or WebP whose header is malformed or cut short (answered 400).
class MalformedImage : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown for an image declaring more pixels than allowed (an HTTP server answers 413).
class ImageTooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Reads the format from the signature and the width and height from the header: PNG's IHDR,
/// JPEG's first SOFn frame header, WebP's VP8, VP8L or VP8X chunk. Throws UnsupportedImage or
/// MalformedImage (the message says which and why).
ImageHeader read_image_header(std::string_view bytes);

/// Whether a JPEG ends with its end-of-image marker (trailing zero padding allowed). A JPEG cut
/// short still decodes (libjpeg fills the missing rows with grey and only warns), so a truncated
/// upload is caught here instead.
bool jpeg_is_complete(std::string_view bytes);

/// read_image_header, then the checks before decoding: a positive size of at most `max_pixels`
/// pixels (else ImageTooLarge, naming `limit_name`, e.g. "max_pixels"), sides of at most
/// limits::kMaxImageSide (else ImageTooLarge) and, for a JPEG, its end marker (else
/// MalformedImage "cut short").
ImageHeader check_image_header(std::string_view bytes, int64_t max_pixels,
                               const std::string& limit_name = "max_pixels");

}  // namespace hg::data
