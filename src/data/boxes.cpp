#include "hg/data/boxes.h"
#include "hg/runtime/text.h"

#include "hg/runtime/limits.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace hg::data {

namespace {

std::string box_text(const std::vector<double>& v) {
  std::ostringstream out;
  out.precision(10);
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  return out.str() + "]";
}

}  // namespace

cv::Rect2d checked_box(const std::vector<double>& v, const std::string& where) {
  bool ok = v.size() == 4;
  for (size_t i = 0; ok && i < 4; ++i) ok = std::abs(v[i]) <= limits::kMaxCoordinate;  // NaN too
  ok = ok && v[2] > 0 && v[3] > 0;
  if (!ok)
    throw std::invalid_argument(
        where + ": " + box_text(v) +
        " is not a box [x, y, w, h] with w, h > 0 and every value at most " +
        std::to_string(static_cast<int64_t>(limits::kMaxCoordinate)) + " in magnitude");
  return {v[0], v[1], v[2], v[3]};
}

std::vector<cv::Rect2d> boxes_from_json(const nlohmann::json& list, const std::string& where) {
  if (!list.is_array())
    throw std::invalid_argument(where + ": expected a list of boxes [x, y, w, h]");
  std::vector<cv::Rect2d> boxes;
  for (const auto& b : list) {
    bool numbers = b.is_array() && b.size() == 4;
    for (size_t i = 0; numbers && i < 4; ++i) numbers = b[i].is_number();
    if (!numbers)
      throw std::invalid_argument(where + ": " + runtime::json_text(b) +
                                  " is not a box [x, y, w, h] of four numbers");
    boxes.push_back(checked_box(b.get<std::vector<double>>(), where));
  }
  return boxes;
}

std::map<std::string, std::vector<cv::Rect2d>> boxes_file_from_json(const nlohmann::json& root,
                                                                    const std::string& source) {
  if (!root.is_object())
    throw std::invalid_argument("cannot read " + source +
                                ": expected an object mapping image names to lists of "
                                "[x, y, w, h]");
  std::map<std::string, std::vector<cv::Rect2d>> out;
  for (const auto& [key, list] : root.items())
    out[key] = boxes_from_json(list, "cannot read " + source + ": '" + key + "'");
  return out;
}

}  // namespace hg::data
