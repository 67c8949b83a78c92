#include "hg/data/image_header.h"

#include "hg/runtime/limits.h"

#include <algorithm>
#include <string>

namespace hg::data {

// OpenCV 4.6 has no header-only query (cv::imdecode allocates the full image, and its own limit,
// OPENCV_IO_MAX_IMAGE_PIXELS, is process-wide and 2^30 pixels by default), so the three headers
// are parsed here: each keeps its dimensions within its first bytes.

namespace {

uint32_t be16(std::string_view b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 8) | uint8_t(b[at + 1]);
}
uint32_t be32(std::string_view b, size_t at) {
  return (be16(b, at) << 16) | be16(b, at + 2);
}
uint32_t le16(std::string_view b, size_t at) {
  return uint8_t(b[at]) | (uint32_t(uint8_t(b[at + 1])) << 8);
}
uint32_t le24(std::string_view b, size_t at) {
  return le16(b, at) | (uint32_t(uint8_t(b[at + 2])) << 16);
}

ImageHeader png_header(std::string_view b) {
  // Signature (8), IHDR length (4) and type (4), then width and height (4 + 4).
  if (b.size() < 24 || b.substr(12, 4) != "IHDR")
    throw MalformedImage("the PNG header is cut short or has no IHDR chunk first");
  return {ImageFormat::kPng, be32(b, 16), be32(b, 20)};
}

ImageHeader jpeg_header(std::string_view b) {
  size_t at = 2;  // after SOI
  while (at + 4 <= b.size()) {
    if (uint8_t(b[at]) != 0xFF) throw MalformedImage("the JPEG has no marker where one is due");
    const uint8_t marker = uint8_t(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      at += 2;  // markers without a length
      continue;
    }
    const uint32_t length = be16(b, at + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (at + 9 > b.size()) break;
      return {ImageFormat::kJpeg, be16(b, at + 7), be16(b, at + 5)};
    }
    if (marker == 0xDA || marker == 0xD9) break;  // scan data before any frame header
    if (length < 2)
      throw MalformedImage("the JPEG has a segment of length " + std::to_string(length));
    at += 2 + length;
  }
  throw MalformedImage("the JPEG has no frame header (SOF) before its data: cut short or corrupt");
}

ImageHeader webp_header(std::string_view b) {
  // RIFF (4) size (4) WEBP (4), then the first chunk: type (4) size (4) payload.
  if (b.size() < 30) throw MalformedImage("the WebP header is cut short");
  const auto chunk = b.substr(12, 4);
  if (chunk == "VP8 ") {
    // Frame tag (3 bytes) then the start code 9D 01 2A and 14-bit width and height.
    if (uint8_t(b[23]) != 0x9D || uint8_t(b[24]) != 0x01 || uint8_t(b[25]) != 0x2A)
      throw MalformedImage("the WebP (VP8) frame has no start code");
    return {ImageFormat::kWebp, le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF};
  }
  if (chunk == "VP8L") {
    if (uint8_t(b[20]) != 0x2F) throw MalformedImage("the WebP (VP8L) has no signature byte");
    const uint32_t bits = le16(b, 21) | (uint32_t(le16(b, 23)) << 16);
    return {ImageFormat::kWebp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8X") return {ImageFormat::kWebp, le24(b, 24) + 1, le24(b, 27) + 1};
  throw MalformedImage("the WebP starts with an unknown chunk '" + std::string(chunk) + "'");
}

}  // namespace

std::string format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
    default:
      return "JPEG";
  }
}

ImageHeader read_image_header(std::string_view b) {
  if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8))
    return png_header(b);
  if (b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF)
    return jpeg_header(b);
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return webp_header(b);
  throw UnsupportedImage(
      "the body is not a JPEG, PNG or WebP image (no known signature in its "
      "first bytes)");
}

bool jpeg_is_complete(std::string_view b) {
  size_t end = b.size();
  while (end > 0 && b[end - 1] == '\0') --end;
  return end >= 2 && uint8_t(b[end - 2]) == 0xFF && uint8_t(b[end - 1]) == 0xD9;
}

ImageHeader check_image_header(std::string_view bytes, int64_t max_pixels,
                               const std::string& limit_name) {
  const ImageHeader header = read_image_header(bytes);
  const std::string what = "the " + format_name(header.format) + " image";
  const std::string size = std::to_string(header.width) + "×" + std::to_string(header.height);
  if (header.width <= 0 || header.height <= 0)
    throw MalformedImage(what + " declares a size of " + size);
  // Each side fits in 32 bits but their product may not fit in 63 (found by fuzz_image).
  int64_t pixels = 0;
  if (__builtin_mul_overflow(header.width, header.height, &pixels) || pixels > max_pixels)
    throw ImageTooLarge(what + " declares " + size + " pixels, more than the limit of " +
                        std::to_string(max_pixels) + " (" + limit_name + ")");
  if (std::max(header.width, header.height) > limits::kMaxImageSide)
    throw ImageTooLarge(what + " is " + size + " pixels: sides over " +
                        std::to_string(limits::kMaxImageSide) +
                        " pixels are not supported (OpenCV's warping takes no more)");
  if (header.format == ImageFormat::kJpeg && !jpeg_is_complete(bytes))
    throw MalformedImage(what + " is cut short (no end-of-image marker)");
  return header;
}

}  // namespace hg::data
