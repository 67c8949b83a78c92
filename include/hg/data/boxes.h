#pragma once
/// Person boxes given by the user: `--boxes` files and the boxes of an HTTP request.

#include <nlohmann/json.hpp>
#include <opencv2/core/types.hpp>

#include <map>
#include <string>
#include <vector>

namespace hg::data {

/// The box x, y, w, h when w, h > 0 and every value is finite and within
/// limits::kMaxCoordinate; else throws std::invalid_argument "WHERE: [x, y, w, h] is not a box
/// ..." with the values.
cv::Rect2d checked_box(const std::vector<double>& xywh, const std::string& where);

/// A JSON list of boxes [[x, y, w, h], ...] in image pixels: four numbers each, w and h > 0,
/// every value within limits::kMaxCoordinate. Throws std::invalid_argument
/// "WHERE: [..] is not a box [x, y, w, h] ..." naming the box.
std::vector<cv::Rect2d> boxes_from_json(const nlohmann::json& list, const std::string& where);

/// A `--boxes` file's content: {"image name": [[x, y, w, h], ...], ...}. Throws
/// std::invalid_argument naming `source` and the key at fault.
std::map<std::string, std::vector<cv::Rect2d>> boxes_file_from_json(const nlohmann::json& root,
                                                                    const std::string& source);

}  // namespace hg::data
