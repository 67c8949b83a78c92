#include "hg/infer/people.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace hg::infer {

std::string source_name(PersonSource source) {
  switch (source) {
    case PersonSource::kCenterScale:
      return "center-scale";
    case PersonSource::kBox:
      return "box";
    case PersonSource::kBoxesFile:
      return "boxes-file";
    case PersonSource::kDetector:
      return "hog-detector";
    case PersonSource::kWholeImage:
      return "whole-image";
    case PersonSource::kNoDetection:
      return "whole-image-no-detection";
    case PersonSource::kAnnotation:
      return "annotation";
    case PersonSource::kBottomUp:
      return "bottom-up";
  }
  return "unknown";
}

data::CropParams crop_of_box(const cv::Rect2d& box) {
  if (!(box.width > 0 && box.height > 0))
    throw std::invalid_argument("a person box needs a positive width and height, got " +
                                std::to_string(box.width) + "×" + std::to_string(box.height));
  data::CropParams p;
  p.center = {box.x + box.width / 2, box.y + box.height / 2};
  p.scale = 1.25 * std::max(box.width, box.height) / 200.0;
  return p;
}

data::CropParams crop_of_image(cv::Size size) {
  data::CropParams p;
  // The image spans [-0.5, W - 0.5]: its centre is at (W - 1) / 2.
  p.center = {(size.width - 1) / 2.0, (size.height - 1) / 2.0};
  p.scale = std::max(size.width, size.height) / 200.0;
  return p;
}

std::vector<PersonCrop> detect_people(const cv::Mat& rgb, int max_people) {
  // The default people SVM has a 64×128 window around a ~96 px tall person: enlarge small
  // images so that people filling a good part of them are still found, and shrink large ones,
  // whose people are large too, to keep the multi-scale search fast.
  constexpr double kMinSide = 400, kMaxSide = 800;
  const double f = std::min(rgb.cols, rgb.rows) < kMinSide
                       ? kMinSide / std::min(rgb.cols, rgb.rows)
                       : std::min(1.0, kMaxSide / std::max(rgb.cols, rgb.rows));
  cv::Mat gray;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  if (f != 1) cv::resize(gray, gray, cv::Size(), f, f, f > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
  cv::HOGDescriptor hog;
  hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
  std::vector<cv::Rect> found;
  std::vector<double> weights;
  hog.detectMultiScale(gray, found, weights, 0, cv::Size(8, 8), cv::Size(16, 16), 1.05, 2);
  std::vector<size_t> order(found.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return weights[a] > weights[b]; });
  std::vector<PersonCrop> people;
  for (size_t k : order) {
    if (static_cast<int>(people.size()) >= max_people) break;
    const cv::Rect2d box(found[k].x / f, found[k].y / f, found[k].width / f, found[k].height / f);
    people.push_back({crop_of_box(box), PersonSource::kDetector, box, weights[k]});
  }
  return people;
}

}  // namespace hg::infer
