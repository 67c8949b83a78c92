#pragma once
/// Pose datasets: joint sets (names, flip pairs, skeleton), per-person annotations and the
/// Dataset interface the loader, `hourglass data` and evaluation read from.
///
/// Coordinates: image pixels, x to the right and y down, the centre of pixel (i, j) at (i, j)
/// (OpenCV's convention). Annotations are used exactly as their files store them.
///
/// Centre and scale follow the MPII convention of the original code: the person's crop is the
/// square of side `200 * scale` pixels centred on `center` (for MPII the files already hold the
/// original's adjusted values, y + 15·s and s × 1.25).

#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hg::data {

/// The joints a dataset annotates: their names, left/right pairs and the skeleton to draw.
struct JointSet {
  std::string name;                             ///< e.g. "mpii", "flic", "coco", "synthetic"
  std::vector<std::string> names;               ///< one per joint, in the dataset's order
  std::vector<std::pair<int, int>> flip_pairs;  ///< joints swapped by a horizontal flip
  std::vector<std::pair<int, int>> skeleton;    ///< edges drawn between joints
  /// Per-joint OKS σ (COCO's keypoint similarity), one per joint; empty when unknown.
  std::vector<double> sigmas;
  std::vector<int> upper_body;  ///< the upper body's joints, for half-body crops (may be empty)

  /// Number of joints.
  int size() const { return static_cast<int>(names.size()); }
  /// The joint each joint becomes under a horizontal flip (identity except for flip_pairs).
  std::vector<int> flip_permutation() const;
  /// Index of the joint called `joint_name`; throws naming the set if there is none.
  int index_of(const std::string& joint_name) const;
  /// Throws (naming `where`) unless every pair/edge index is in range and no joint is in two
  /// flip pairs.
  void validate(const std::string& where) const;
};

/// MPII's 16 joints: 0 r-ankle, 1 r-knee, 2 r-hip, 3 l-hip, 4 l-knee, 5 l-ankle, 6 pelvis,
/// 7 thorax, 8 upper neck, 9 head top, 10 r-wrist, 11 r-elbow, 12 r-shoulder, 13 l-shoulder,
/// 14 l-elbow, 15 l-wrist. Also the joint set of the synthetic dataset (named "synthetic").
JointSet mpii_joints();
/// FLIC's 11 joints: l-shoulder, l-elbow, l-wrist, r-shoulder, r-elbow, r-wrist, l-hip, r-hip,
/// l-eye, r-eye, nose.
JointSet flic_joints();
/// COCO's 17 person keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
JointSet coco_joints();

/// One joint of one person.
struct Keypoint {
  cv::Point2d pos;       ///< image pixels (meaningless when !present)
  bool present = false;  ///< annotated (MPII: not at (0,0); COCO: v > 0)
  bool visible = false;  ///< annotated as visible (not occluded); implies present
};

/// One person: a sample of a pose dataset.
struct Annotation {
  std::string image;             ///< image path (file datasets) or a label (synthetic)
  cv::Point2d center;            ///< crop centre, image pixels
  double scale = 1;              ///< crop side = 200 * scale pixels
  std::vector<Keypoint> joints;  ///< one per joint of the dataset's JointSet
  double normalize = 0;    ///< PCK unit in pixels (MPII: 0.6 × head-box diagonal; 0 = unknown)
  int64_t index = -1;      ///< the file's image index (MPII `index`), else the sample number
  int64_t person = 0;      ///< person number within the image
  double torso_angle = 0;  ///< degrees, as stored by the file (0 when the format has none)
};

/// The readers' margin around a person's box: crop side = kBoxMargin · max(w, h).
constexpr double kBoxMargin = 1.25;
/// The PCK unit of a person, in image pixels: its `normalize`, else (COCO and custom files
/// without one) the longer side of its box, 200 · scale / kBoxMargin: what eval and training
/// validation both score with.
double pck_unit(const Annotation& a);

class Dataset;
/// The first `n` samples of `dataset` (all of it when n ≥ its size), sharing it.
std::shared_ptr<const Dataset> first_n(std::shared_ptr<const Dataset> dataset, size_t n);
/// Samples [begin, end) of `dataset` (end clipped to its size), sharing it; sample i of the
/// view is sample begin + i of `dataset`.
std::shared_ptr<const Dataset> sample_range(std::shared_ptr<const Dataset> dataset, size_t begin,
                                            size_t end);

/// A pose dataset: a fixed number of annotated people, each with an image.
/// Implementations are immutable after construction and safe to read from several threads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples (people).
  virtual size_t size() const = 0;
  /// The dataset's joints.
  virtual const JointSet& joints() const = 0;
  /// Annotation of sample `i` (< size()).
  virtual Annotation annotation(size_t i) const = 0;
  /// Image of sample `i`: H×W CV_8UC3, RGB. Throws ImageError when the image is missing or
  /// cannot be decoded.
  virtual cv::Mat image(size_t i) const = 0;
  /// Annotation and image of sample `i` together; throws like image(). `reduce` (1, 2, 4 or 8)
  /// allows the image to come at 1/reduce of its size where the format does that cheaply (JPEG's
  /// DCT scaling); the factor applied is stored in `*applied`. Pixel (i, j) of a reduced image
  /// covers original pixels [f·i, f·i + f), so its centre is original coordinate f·i + (f-1)/2.
  /// The annotation is always in original pixels. Datasets that generate both at once, or can
  /// decode smaller, override this.
  virtual Annotation load(size_t i, cv::Mat& image, int reduce = 1, int* applied = nullptr) const {
    image = this->image(i);
    if (applied) *applied = 1;
    return annotation(i);
  }
  /// A one-line description ("mpii: valid.h5, 2958 samples").
  virtual std::string describe() const = 0;
};

/// Thrown when a sample's image is missing or corrupt; the loader counts and skips these.
class ImageError : public std::runtime_error {
 public:
  ImageError(std::string path, const std::string& why)
      : std::runtime_error("cannot read image " + path + ": " + why), path_(std::move(path)) {}
  /// The image file at fault.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Decodes an encoded image as RGB CV_8UC3, at 1/reduce of its size when reduce is 2, 4 or 8.
/// JPEG, PNG and WebP are checked from their header first (check_image_header: at most
/// `max_pixels` pixels, a JPEG not cut short); other formats OpenCV reads (BMP, TIFF...) are
/// decoded when `other_formats`, then checked. Throws UnsupportedImage, ImageTooLarge or
/// MalformedImage (also for any complaint of OpenCV's decoder), never an OpenCV exception.
cv::Mat decode_image_rgb(std::string_view bytes, int64_t max_pixels, int reduce = 1,
                         bool other_formats = false);

/// The pixel budget of read_image_rgb (default limits::kDefaultMaxImagePixels), process-wide:
/// `--max-pixels` of predict, eval and show sets it. Throws std::invalid_argument unless > 0.
void set_max_image_pixels(int64_t pixels);
int64_t max_image_pixels();

/// Reads an image file as RGB CV_8UC3, at 1/reduce of its size when reduce is 2, 4 or 8 (see
/// Dataset::load), decoding it with decode_image_rgb under max_image_pixels(). Throws ImageError
/// (naming `path` and the reason) when the file is missing, too large, cut short or not a
/// decodable image.
cv::Mat read_image_rgb(const std::string& path, int reduce = 1);

/// A dataset of annotations held in memory whose images are files on disk (MPII, FLIC, COCO and
/// custom JSON). `Annotation::image` is the full path of each image.
class FileDataset : public Dataset {
 public:
  /// `source` is the annotation file (for messages).
  FileDataset(JointSet joints, std::vector<Annotation> samples, std::string source);
  size_t size() const override { return samples_.size(); }
  const JointSet& joints() const override { return joints_; }
  Annotation annotation(size_t i) const override;
  cv::Mat image(size_t i) const override;
  Annotation load(size_t i, cv::Mat& image, int reduce = 1, int* applied = nullptr) const override;
  std::string describe() const override;
  /// All annotations, in file order.
  const std::vector<Annotation>& samples() const { return samples_; }

 private:
  JointSet joints_;
  std::vector<Annotation> samples_;
  std::string source_;
};

}  // namespace hg::data
