#include "hg/data/boxes.h"

#include "hg/runtime/limits.h"

#include <cmath>
#include <stdexcept>

namespace hg::data {

std::vector<cv::Rect2d> boxes_from_json(const nlohmann::json& list, const std::string& where) {
  if (!list.is_array())
    throw std::invalid_argument(where + ": expected a list of boxes [x, y, w, h]");
  std::vector<cv::Rect2d> boxes;
  for (const auto& b : list) {
    bool ok = b.is_array() && b.size() == 4;
    for (size_t i = 0; ok && i < 4; ++i)
      ok = b[i].is_number() && std::abs(b[i].get<double>()) <= limits::kMaxCoordinate;
    ok = ok && b[2].get<double>() > 0 && b[3].get<double>() > 0;
    if (!ok)
      throw std::invalid_argument(where + ": " + b.dump() +
                                  " is not a box [x, y, w, h] with w, h > 0 and every value at "
                                  "most " +
                                  std::to_string(static_cast<int64_t>(limits::kMaxCoordinate)) +
                                  " in magnitude");
    boxes.emplace_back(b[0].get<double>(), b[1].get<double>(), b[2].get<double>(),
                       b[3].get<double>());
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
