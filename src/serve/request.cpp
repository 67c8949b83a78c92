#include "request.h"

#include "hg/data/boxes.h"
#include "hg/data/dataset.h"
#include "hg/data/image_header.h"
#include "hg/data/json.h"

#include <nlohmann/json.hpp>

namespace hg::serve {

namespace {

using nlohmann::json;

bool query_flag(const httplib::Request& req, const std::string& key, bool fallback) {
  if (!req.has_param(key)) return fallback;
  const auto v = req.get_param_value(key);
  if (v == "1" || v == "true" || v == "yes" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw HttpError(400, "query parameter " + key + "=" + v + " is not 0/1 or true/false");
}

// `stacks=K` (1..S): the answer's joints are stack K's and "stacks" lists stacks 1..K.
int64_t query_stacks(const httplib::Request& req, int64_t stacks) {
  if (!req.has_param("stacks")) return stacks;
  const auto v = req.get_param_value("stacks");
  size_t used = 0;
  int64_t k = 0;
  try {
    k = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || k < 1 || k > stacks)
    throw HttpError(400, "query parameter stacks=" + v + " is not a stack count from 1 to " +
                             std::to_string(stacks) + " (this model's stacks)");
  return k;
}

// The boxes of a request: a list [[x, y, w, h], ...], or the --boxes file's object with one
// entry (its one list is taken, whatever the image is called).
std::vector<infer::PersonCrop> parse_boxes(const std::string& text, int64_t max_boxes) {
  json j;
  try {
    j = data::parse_json(text, "boxes");
  } catch (const data::JsonError& e) {
    throw HttpError(400, e.what());
  }
  if (j.is_object() && j.size() == 1) j = j.begin().value();
  if (!j.is_array())
    throw HttpError(400, "boxes: expected a list of [x, y, w, h] (or {\"image\": [...]})");
  // Each box is a network pass: a request may not hold the network (or its memory) for long.
  if (static_cast<int64_t>(j.size()) > max_boxes)
    throw HttpError(413, "boxes: " + std::to_string(j.size()) +
                             " boxes, but this server takes at most " + std::to_string(max_boxes) +
                             " people per request (max_boxes): send them in several requests");
  std::vector<infer::PersonCrop> people;
  try {
    for (const auto& box : data::boxes_from_json(j, "boxes"))
      people.push_back({infer::crop_of_box(box), infer::PersonSource::kBoxesFile, box, 0});
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, e.what());
  }
  return people;
}

}  // namespace

void check_pose_content_type(const std::string& type) {
  for (const char* taken : {"image/", "application/octet-stream", "multipart/form-data"})
    if (type.empty() || type.rfind(taken, 0) == 0) return;
  throw HttpError(415, "Content-Type '" + type +
                           "' is not an image: send image/jpeg, image/png or image/webp (curl "
                           "--data-binary @photo.jpg -H 'Content-Type: image/jpeg'), or "
                           "multipart/form-data with an 'image' part (curl -F image=@photo.jpg)");
}

PoseRequest read_pose_request(const httplib::Request& req, const RequestRules& rules) {
  PoseRequest r;
  r.image = &req.body;
  if (req.is_multipart_form_data()) {
    if (!req.has_file("image")) throw HttpError(400, "the multipart body has no 'image' part");
    r.image = &req.files.find("image")->second.content;
    if (req.has_file("boxes")) {
      r.people = parse_boxes(req.files.find("boxes")->second.content, rules.max_boxes);
      r.has_boxes = true;
    }
  } else {
    check_pose_content_type(req.get_header_value("Content-Type"));
  }
  r.flip = query_flag(req, "flip", rules.flip);
  r.whole_image = query_flag(req, "whole_image", false);
  r.stacks = query_stacks(req, rules.stacks);
  if (req.has_param("size") && req.get_param_value("size") != std::to_string(rules.input_size))
    throw HttpError(400, "size=" + req.get_param_value("size") +
                             ": this server runs the network at " +
                             std::to_string(rules.input_size) +
                             " (its input size: restart it with another to change)");
  return r;
}

cv::Mat decode_request_image(const std::string& bytes, int64_t max_pixels) {
  if (bytes.empty()) throw HttpError(400, "the body is empty: send a JPEG, PNG or WebP image");
  try {
    return data::decode_image_rgb(bytes, max_pixels);
  } catch (const data::UnsupportedImage& e) {
    throw HttpError(415, e.what());
  } catch (const data::MalformedImage& e) {
    throw HttpError(400, e.what());
  } catch (const data::ImageTooLarge& e) {
    throw HttpError(413, e.what());
  }
}

}  // namespace hg::serve
