#include "hg/data/dataset.h"

#include "hg/data/image_header.h"
#include "hg/runtime/limits.h"
#include "hg/runtime/text.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>

namespace hg::data {

std::vector<int> JointSet::flip_permutation() const {
  std::vector<int> perm(names.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  for (const auto& [a, b] : flip_pairs) {
    perm[static_cast<size_t>(a)] = b;
    perm[static_cast<size_t>(b)] = a;
  }
  return perm;
}

int JointSet::index_of(const std::string& joint_name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == joint_name) return static_cast<int>(i);
  throw std::runtime_error("joint set '" + name + "' has no joint named '" + joint_name + "'");
}

void JointSet::validate(const std::string& where) const {
  const int n = size();
  if (n == 0) throw std::runtime_error(where + ": the joint list is empty");
  auto check = [&](const std::vector<std::pair<int, int>>& v, const char* field) {
    for (const auto& [a, b] : v)
      if (a < 0 || b < 0 || a >= n || b >= n || a == b)
        throw std::runtime_error(
            where + ": " + field + " entry [" + std::to_string(a) + ", " + std::to_string(b) +
            "] must be two different joint indices in 0.." + std::to_string(n - 1));
  };
  check(flip_pairs, "flip_pairs");
  check(skeleton, "skeleton");
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (const auto& [a, b] : flip_pairs)
    if (++seen[static_cast<size_t>(a)] > 1 || ++seen[static_cast<size_t>(b)] > 1)
      throw std::runtime_error(where + ": flip_pairs: joint " +
                               std::to_string(seen[static_cast<size_t>(a)] > 1 ? a : b) +
                               " appears in more than one pair");
  if (!sigmas.empty() && sigmas.size() != names.size())
    throw std::runtime_error(where + ": " + std::to_string(sigmas.size()) + " OKS sigmas for " +
                             std::to_string(n) + " joints");
}

JointSet mpii_joints() {
  return {
      "mpii",
      {"r-ankle", "r-knee", "r-hip", "l-hip", "l-knee", "l-ankle", "pelvis", "thorax", "upper-neck",
       "head-top", "r-wrist", "r-elbow", "r-shoulder", "l-shoulder", "l-elbow", "l-wrist"},
      {{0, 5}, {1, 4}, {2, 3}, {10, 15}, {11, 14}, {12, 13}},
      {{0, 1},
       {1, 2},
       {2, 6},
       {6, 3},
       {3, 4},
       {4, 5},
       {6, 7},
       {7, 8},
       {8, 9},
       {10, 11},
       {11, 12},
       {12, 7},
       {7, 13},
       {13, 14},
       {14, 15}},
      {},
      {7, 8, 9, 10, 11, 12, 13, 14, 15}};  // upper body (MMPose's)
}

JointSet flic_joints() {
  return {"flic",
          {"l-shoulder", "l-elbow", "l-wrist", "r-shoulder", "r-elbow", "r-wrist", "l-hip", "r-hip",
           "l-eye", "r-eye", "nose"},
          {{0, 3}, {1, 4}, {2, 5}, {6, 7}, {8, 9}},
          {{0, 1}, {1, 2}, {3, 4}, {4, 5}, {0, 3}, {0, 6}, {3, 7}, {6, 7}, {8, 10}, {9, 10}},
          {}};
}

JointSet coco_joints() {
  return {
      "coco",
      {"nose", "l-eye", "r-eye", "l-ear", "r-ear", "l-shoulder", "r-shoulder", "l-elbow", "r-elbow",
       "l-wrist", "r-wrist", "l-hip", "r-hip", "l-knee", "r-knee", "l-ankle", "r-ankle"},
      {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}, {13, 14}, {15, 16}},
      // COCO's own skeleton (person category), made 0-based.
      {{15, 13},
       {13, 11},
       {16, 14},
       {14, 12},
       {11, 12},
       {5, 11},
       {6, 12},
       {5, 6},
       {5, 7},
       {6, 8},
       {7, 9},
       {8, 10},
       {1, 2},
       {0, 1},
       {0, 2},
       {1, 3},
       {2, 4},
       {3, 5},
       {4, 6}},
      // The official evaluation's per-keypoint σ (cocoeval.py's kpt_oks_sigmas).
      {.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087,
       .089, .089},
      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};  // upper body: head and arms
}

namespace {
std::atomic<int64_t> max_pixels{limits::kDefaultMaxImagePixels};
}  // namespace

void set_max_image_pixels(int64_t pixels) {
  if (pixels <= 0)
    throw std::invalid_argument("the pixel limit max_pixels must be > 0, got " +
                                std::to_string(pixels));
  max_pixels = pixels;
}

int64_t max_image_pixels() {
  return max_pixels;
}

cv::Mat decode_image_rgb(std::string_view bytes, int64_t max_pixels, int reduce,
                         bool other_formats) {
  const int mode = reduce == 8   ? cv::IMREAD_REDUCED_COLOR_8
                   : reduce == 4 ? cv::IMREAD_REDUCED_COLOR_4
                   : reduce == 2 ? cv::IMREAD_REDUCED_COLOR_2
                                 : cv::IMREAD_COLOR;
  if (reduce != 1 && reduce != 2 && reduce != 4 && reduce != 8)
    throw std::invalid_argument("image reduction must be 1, 2, 4 or 8, got " +
                                std::to_string(reduce));
  std::string what = "the image";
  bool known = true;
  try {
    what = "the " + format_name(check_image_header(bytes, max_pixels).format) + " image";
  } catch (const UnsupportedImage&) {
    if (!other_formats) throw;
    known = false;
  }
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw ImageTooLarge(what + " is larger than 2 GB");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, mode);
  } catch (const cv::Exception& e) {
    throw MalformedImage(what + " cannot be decoded (" + e.err + ")");
  }
  if (bgr.empty()) throw MalformedImage(what + " cannot be decoded (corrupt or cut short)");
  if (!known && int64_t(bgr.cols) * bgr.rows * reduce * reduce > max_pixels)
    throw ImageTooLarge(what + " has " + std::to_string(bgr.cols * reduce) + "×" +
                        std::to_string(bgr.rows * reduce) + " pixels, more than the limit of " +
                        std::to_string(max_pixels) + " (max_pixels)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat read_image_rgb(const std::string& path, int reduce) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);  // a symbolic link is followed
  if (!std::filesystem::exists(status))
    throw ImageError(path, ec && ec != std::errc::no_such_file_or_directory
                               ? "cannot be read (" + ec.message() + ")"
                               : std::string("no such file"));
  if (!std::filesystem::is_regular_file(status))
    throw ImageError(path, "is not a regular file (a folder, device or pipe)");
  // The size first: a huge file with an image header would otherwise be read whole.
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits::kMaxImageFileBytes)
    throw ImageError(path, "is " + std::to_string(size) + " bytes: image files over " +
                               std::to_string(limits::kMaxImageFileBytes) +
                               " bytes are not read (the limit)");
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw ImageError(path, "cannot be read");
  try {
    return decode_image_rgb(bytes, max_image_pixels(), reduce, /*other_formats=*/true);
  } catch (const UnsupportedImage&) {
    throw ImageError(path, "not a decodable image (corrupt or unknown format)");
  } catch (const std::runtime_error& e) {
    throw ImageError(path, e.what());
  }
}

FileDataset::FileDataset(JointSet joints, std::vector<Annotation> samples, std::string source)
    : joints_(std::move(joints)), samples_(std::move(samples)), source_(std::move(source)) {
  joints_.validate(source_);
}

Annotation FileDataset::annotation(size_t i) const {
  if (i >= samples_.size())
    throw std::out_of_range(source_ + ": sample " + std::to_string(i) + " out of range (size " +
                            std::to_string(samples_.size()) + ")");
  return samples_[i];
}

cv::Mat FileDataset::image(size_t i) const {
  return read_image_rgb(annotation(i).image);
}

Annotation FileDataset::load(size_t i, cv::Mat& image, int reduce, int* applied) const {
  Annotation a = annotation(i);
  image = read_image_rgb(a.image, reduce);
  if (applied) *applied = reduce;
  return a;
}

namespace {
class Range : public Dataset {
 public:
  Range(std::shared_ptr<const Dataset> inner, size_t begin, size_t end)
      : inner_(std::move(inner)), begin_(begin), end_(end) {}
  size_t size() const override { return end_ - begin_; }
  const JointSet& joints() const override { return inner_->joints(); }
  Annotation annotation(size_t i) const override { return inner_->annotation(begin_ + i); }
  cv::Mat image(size_t i) const override { return inner_->image(begin_ + i); }
  Annotation load(size_t i, cv::Mat& image, int reduce, int* applied) const override {
    return inner_->load(begin_ + i, image, reduce, applied);
  }
  std::string describe() const override {
    return inner_->describe() + (begin_ == 0 ? " (first " + std::to_string(end_) + ")"
                                             : " (samples " + std::to_string(begin_) + " to " +
                                                   std::to_string(end_ - 1) + ")");
  }

 private:
  std::shared_ptr<const Dataset> inner_;
  size_t begin_, end_;
};
}  // namespace

std::shared_ptr<const Dataset> sample_range(std::shared_ptr<const Dataset> dataset, size_t begin,
                                            size_t end) {
  end = std::min(end, dataset->size());
  if (begin > end)
    throw std::runtime_error("sample range " + std::to_string(begin) + " to " +
                             std::to_string(end) + " is reversed");
  if (begin == 0 && end == dataset->size()) return dataset;
  return std::make_shared<Range>(std::move(dataset), begin, end);
}

double pck_unit(const Annotation& a) {
  return a.normalize > 0 ? a.normalize : 200 * a.scale / kBoxMargin;
}

std::shared_ptr<const Dataset> first_n(std::shared_ptr<const Dataset> dataset, size_t n) {
  return sample_range(std::move(dataset), 0, n);
}

std::string FileDataset::describe() const {
  return joints_.name + ": " + source_ + ", " +
         runtime::count(static_cast<int64_t>(samples_.size()), "sample") + ", " +
         runtime::count(joints_.size(), "joint");
}

}  // namespace hg::data
