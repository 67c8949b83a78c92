#pragma once
/// Where the people of an image are, for the top-down predictor: a crop centre and scale per
/// person, from a box, the whole image or OpenCV's HOG people detector. No network here.

#include "hg/data/transform.h"

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace hg::infer {

/// How a person's crop was chosen; written to the output as it is.
enum class PersonSource {
  kCenterScale,  ///< --center/--scale given by the user
  kBox,          ///< --box given by the user
  kBoxesFile,    ///< a box from a --boxes file
  kDetector,     ///< OpenCV's HOG people detector
  kWholeImage,   ///< the image itself (--whole-image)
  kNoDetection,  ///< the image itself, because the detector found no one
  kAnnotation,   ///< a dataset annotation's centre and scale (evaluation)
  kBottomUp,     ///< a bottom-up model found the person and its joints itself (CenterNet)
};

/// Where one person is: the crop to estimate from and how it was found.
struct PersonCrop {
  data::CropParams crop;  ///< centre and scale (image pixels; the square side is 200·scale)
  PersonSource source = PersonSource::kCenterScale;
  cv::Rect2d box;        ///< the box it was made from (empty for centre/scale and whole-image)
  double detection = 0;  ///< the detector's score (kDetector only)
};

/// The crop of a person box [x, y, w, h] (image pixels): centre = box centre, scale =
/// 1.25 · max(w, h) / 200, the 25% margin the COCO and custom readers use, so that a tight box
/// gives the framing the network was trained on. Throws unless w, h > 0.
data::CropParams crop_of_box(const cv::Rect2d& box);

/// The crop covering a whole `size` image: centre = image centre, side = its longer side.
data::CropParams crop_of_image(cv::Size size);

/// People found by OpenCV's built-in HOG people detector (default people SVM, no download) in
/// an RGB image, best score first, at most `max_people`. The search runs on the image resized to
/// a shorter side of at least 400 and a longer side of at most 800 pixels (people below about a
/// quarter of the image height in large images are missed).
std::vector<PersonCrop> detect_people(const cv::Mat& rgb, int max_people = 10);

/// How a person was found, as the predictions file's "found_by" says it: "center-scale", "box",
/// "boxes-file", "hog-detector", "whole-image", "whole-image-no-detection", "annotation".
std::string source_name(PersonSource source);

}  // namespace hg::infer
