#pragma once
// Reading a POST /v1/pose: its body, parts and query, and its image (private to the server and
// the HTTP fuzz target; see hg/serve/server.h for the API).

#include "hg/infer/people.h"

#include <httplib.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace hg::serve {

// An answer other than 200, raised anywhere in a handler; the message goes to the client.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

// What the server lets a request choose.
struct RequestRules {
  bool flip = true;    // the flip test when the query does not say
  int64_t stacks = 1;  // the model's stacks: `stacks=K` must be 1..stacks
  int input_size = 256;
  int64_t max_boxes = 64;  // boxes per request: more are answered 413
};

// What a request asks for.
struct PoseRequest {
  const std::string* image = nullptr;     // its bytes: the body, or the multipart 'image' part
  std::vector<infer::PersonCrop> people;  // from the 'boxes' part
  bool has_boxes = false;
  bool flip = true;
  bool whole_image = false;
  int64_t stacks = 1;  // the answer's joints are stack `stacks`'s
};

// Refuses (HttpError 415, naming the types taken) a POST /v1/pose body that is neither an image
// (image/*, application/octet-stream, no type) nor multipart/form-data; checked from the headers,
// before the body is read (curl --data-binary sends application/x-www-form-urlencoded).
void check_pose_content_type(const std::string& type);

// The request's image and options. Throws HttpError: 400 for a bad query, boxes part or
// multipart body, 415 for a content type that is not an image.
PoseRequest read_pose_request(const httplib::Request& req, const RequestRules& rules);

// The image of `bytes` as 8-bit RGB. Throws HttpError: 400 empty, truncated or undecodable;
// 415 not JPEG, PNG or WebP; 413 declaring more than `max_pixels` pixels (not decoded).
cv::Mat decode_request_image(const std::string& bytes, int64_t max_pixels);

}  // namespace hg::serve
