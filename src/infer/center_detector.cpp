#include "hg/infer/center_detector.h"

#include "hg/engine/engine.h"
#include "hg/infer/center_decode.h"
#include "hg/io/checkpoint.h"

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

namespace hg::infer {
namespace {

// CenterNet's get_affine_transform without rotation or shift (utils/image.py): the three points
// it maps (the centre, the centre half a side above it, and a third at a right angle) from the
// image to a `w`×`h` grid, or back with `inverse`. Its points are float32, as here, and OpenCV
// solves for the matrix, so the matrix is CenterNet's to the last bit.
cv::Matx23d center_affine(cv::Point2f c, cv::Point2f scale, double w, double h, bool inverse) {
  const float src_w = scale.x, dst_w = static_cast<float>(w), dst_h = static_cast<float>(h);
  const cv::Point2f src[3] = {c, c + cv::Point2f(0, src_w * -0.5f),
                              c + cv::Point2f(src_w * -0.5f, src_w * -0.5f)};
  const cv::Point2f mid(dst_w * 0.5f, dst_h * 0.5f);
  const cv::Point2f dst[3] = {mid, mid + cv::Point2f(0, dst_w * -0.5f),
                              mid + cv::Point2f(dst_w * -0.5f, dst_w * -0.5f)};
  return cv::Matx23d(inverse ? cv::getAffineTransform(dst, src) : cv::getAffineTransform(src, dst));
}

// flip_tensor, and flip_lr / flip_lr_off (models/utils.py): the mirrored pass's maps flipped
// back, each joint's channels exchanged with its mirror's, and for offsets (2 channels a joint)
// the x offset negated.
at::Tensor flipped_back(const at::Tensor& t, const std::vector<int>& permutation, bool offsets) {
  auto x = t.flip({3});
  if (permutation.empty()) return x;
  const int64_t j = static_cast<int64_t>(permutation.size());
  if (offsets) {
    x = x.reshape({x.size(0), j, 2, x.size(2), x.size(3)}).clone();
    x.select(2, 0).neg_();
  }
  const auto index = torch::tensor(std::vector<int64_t>(permutation.begin(), permutation.end()));
  return x.index_select(1, index).reshape(t.sizes());
}

}  // namespace

CenterNetInput center_net_input(const cv::Mat& bgr, int64_t input_size, int64_t multiple,
                                bool flip) {
  TORCH_CHECK(!bgr.empty() && bgr.type() == CV_8UC3,
              "CenterNet's input is an 8-bit 3-channel (BGR) image, got type ", bgr.type(), " of ",
              bgr.cols, "×", bgr.rows);
  const int height = bgr.rows, width = bgr.cols;
  int inp_h = static_cast<int>(input_size), inp_w = inp_h;
  cv::Point2f c(width / 2.f, height / 2.f), s(float(std::max(height, width)), 0);
  if (input_size == 0) {  // keep_res: (side | pad) + 1 with CenterNet's pad of multiple − 1
    const int pad = static_cast<int>(multiple) - 1;
    inp_h = (height | pad) + 1;
    inp_w = (width | pad) + 1;
    c = cv::Point2f(float(width / 2), float(height / 2));
    s = cv::Point2f(float(inp_w), float(inp_h));
  }
  const cv::Matx23d to_input = center_affine(c, s, inp_w, inp_h, false);
  cv::Mat warped;
  cv::warpAffine(bgr, warped, cv::Mat(to_input), cv::Size(inp_w, inp_h), cv::INTER_LINEAR);
  // (value / 255. − mean) / std in double with float32 mean and std, as numpy computes it, then
  // float32.
  auto image = torch::empty({1, 3, inp_h, inp_w});
  auto a = image.accessor<float, 4>();
  for (int y = 0; y < inp_h; ++y) {
    const auto* row = warped.ptr<cv::Vec3b>(y);
    for (int x = 0; x < inp_w; ++x)
      for (int k = 0; k < 3; ++k)
        a[0][k][y][x] =
            static_cast<float>((row[x][k] / 255. - kCenterNetMean[k]) / kCenterNetStd[k]);
  }
  if (flip) image = torch::cat({image, image.flip({3})}, 0);
  return {image, center_affine(c, s, inp_w / 4, inp_h / 4, true)};
}

std::vector<PosePrediction> people_of(const std::vector<CenterNetDetection>& detections,
                                      double min_score) {
  std::vector<PosePrediction> people;
  for (const auto& d : detections) {
    if (d.score < min_score) continue;
    PosePrediction p;
    p.person.source = PersonSource::kBottomUp;
    p.person.box = d.box;
    p.person.detection = d.score;
    const cv::Point2d centre(d.box.x + d.box.width / 2, d.box.y + d.box.height / 2);
    p.person.crop = d.box.width > 0 && d.box.height > 0 ? crop_of_box(d.box)
                                                        : data::CropParams{centre, 1.25 / 200};
    p.joints = torch::empty({1, static_cast<int64_t>(d.joints.size()), 3});
    auto a = p.joints.accessor<float, 3>();
    for (size_t j = 0; j < d.joints.size(); ++j) {
      a[0][j][0] = static_cast<float>(d.joints[j].x);
      a[0][j][1] = static_cast<float>(d.joints[j].y);
      a[0][j][2] = static_cast<float>(d.score);
    }
    people.push_back(std::move(p));
  }
  return people;
}

CenterNetDetector::CenterNetDetector(model::LargeHourglass model, CenterNetOptions options)
    : model_(std::move(model)), architecture_(model_->options), options_(std::move(options)) {
  require_detection_heads(architecture_);
  TORCH_CHECK(options_.top_k >= 1, "top_k must be 1 or more, got ", options_.top_k);
  TORCH_CHECK(options_.input_size >= 0,
              "input_size must be 0 (keep the image's size) or a side in "
              "pixels, got ",
              options_.input_size);
  if (options_.input_size > 0)
    architecture_.check_input_size(options_.input_size, options_.input_size, "the input size");
  for (const auto& head : architecture_.heads())
    if (head.name == "hps") joints_ = head.channels / 2;
  if (joints_ > 0) {
    joint_set_ = data::coco_joints();
    TORCH_CHECK(joints_ == joint_set_.size(), "a multi_pose model's joints are COCO's 17; ",
                architecture_.describe(), " has ", joints_);
  }
  engine_ = uses_engine(options_.backend);
  model_->eval();
  if (!engine_) model_->to(options_.backend.device);
  if (engine_ && options_.input_size > 0) {
    auto o = options_.backend.engine;
    o.batch = options_.flip ? 2 : 1;
    o.height = o.width = options_.input_size;
    engines_.emplace(std::pair{o.height, o.width},
                     std::make_unique<engine::Engine>(engine::Engine::build_consuming(*model_, o)));
    model_ = nullptr;
  }
}

CenterNetDetector CenterNetDetector::load(const std::string& weights, CenterNetOptions options) {
  return CenterNetDetector(io::load_large_hourglass(weights).model, std::move(options));
}

CenterNetDetector::CenterNetDetector(CenterNetDetector&&) = default;
CenterNetDetector::~CenterNetDetector() = default;

std::map<std::string, at::Tensor> CenterNetDetector::heads_of(const at::Tensor& images) {
  torch::InferenceMode guard;
  model::HeadOutputs all;
  if (engine_) {
    const std::pair<int64_t, int64_t> size{images.size(2), images.size(3)};
    auto it = engines_.find(size);
    if (it == engines_.end()) {
      auto o = options_.backend.engine;
      o.batch = images.size(0);
      std::tie(o.height, o.width) = size;
      it = engines_
               .emplace(size, std::make_unique<engine::Engine>(engine::Engine::build(*model_, o)))
               .first;
    }
    all = it->second->forward_all(images);
  } else {
    all = model_->forward(images.to(options_.backend.device));
  }
  std::map<std::string, at::Tensor> last;
  for (auto& [name, t] : all) last.emplace(name, t.select(1, -1).to(torch::kCPU, torch::kFloat));
  last.at("hm") = last.at("hm").sigmoid();
  if (last.count("hm_hp")) last.at("hm_hp") = last.at("hm_hp").sigmoid();
  if (!options_.flip) return last;
  // multi_pose.py / ctdet.py: the mean of a pass and its mirror for hm, wh, hps and hm_hp; the
  // offsets of the first pass alone.
  const auto permutation = joints_ > 0 ? joint_set_.flip_permutation() : std::vector<int>{};
  for (auto& [name, t] : last) {
    const auto first = t.slice(0, 0, 1);
    if (name == "hm" || name == "wh")
      t = (first + flipped_back(t.slice(0, 1, 2), {}, false)) / 2;
    else if (name == "hps" || name == "hm_hp")
      t = (first + flipped_back(t.slice(0, 1, 2), permutation, name == "hps")) / 2;
    else
      t = first;
  }
  return last;
}

std::vector<CenterNetDetection> CenterNetDetector::detect(const cv::Mat& bgr) {
  const auto input =
      center_net_input(bgr, options_.input_size, architecture_.input_multiple(), options_.flip);
  const auto heads = heads_of(input.images);
  auto head = [&](const char* name) {
    const auto it = heads.find(name);
    return it == heads.end() ? at::Tensor() : it->second;
  };
  const int64_t k = std::min(options_.top_k, heads.at("hm").size(2) * heads.at("hm").size(3));
  const auto dets =
      (joints_ > 0 ? multi_pose_decode(head("hm"), head("wh"), head("hps"), head("reg"),
                                       head("hm_hp"), head("hp_offset"), k)
                   : ctdet_decode(head("hm"), head("wh"), head("reg"), k))[0]
          .contiguous();
  // transform_preds: each (x, y) of float32 through the float64 affine, the result float32.
  const auto& m = input.to_image;
  auto to_image = [&](float x, float y) {
    return cv::Point2d(static_cast<float>(m(0, 0) * x + m(0, 1) * y + m(0, 2)),
                       static_cast<float>(m(1, 0) * x + m(1, 1) * y + m(1, 2)));
  };
  std::vector<CenterNetDetection> out;
  const auto a = dets.accessor<float, 2>();
  for (int64_t i = 0; i < dets.size(0); ++i) {
    CenterNetDetection d;
    const auto p1 = to_image(a[i][0], a[i][1]), p2 = to_image(a[i][2], a[i][3]);
    d.box = cv::Rect2d(p1.x, p1.y, p2.x - p1.x, p2.y - p1.y);
    d.score = a[i][4];
    d.label = static_cast<int64_t>(a[i][dets.size(1) - 1]);
    for (int64_t j = 0; j < joints_; ++j)
      d.joints.push_back(to_image(a[i][5 + 2 * j], a[i][6 + 2 * j]));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace hg::infer
