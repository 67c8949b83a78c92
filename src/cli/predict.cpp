#include "cli/cli.h"
#include "hg/data/dataset.h"
#include "hg/eval/coco_predict.h"
#include "hg/infer/center_decode.h"
#include "hg/infer/center_detector.h"
#include "hg/infer/results.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/io/progress.h"
#include "hg/runtime/text.h"
#include "hg/viz/draw.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

namespace fs = std::filesystem;

namespace hg::cli {
namespace {

const std::vector<std::string> kImageExtensions = {".jpg", ".jpeg", ".png", ".bmp",
                                                   ".tif", ".tiff", ".webp"};
const std::vector<std::string> kVideoExtensions = {".mp4", ".avi", ".mov", ".mkv", ".webm"};

std::string lower_extension(const fs::path& p) {
  auto e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

bool has_extension(const fs::path& p, const std::vector<std::string>& list) {
  return std::find(list.begin(), list.end(), lower_extension(p)) != list.end();
}

// The skeleton of every person (last stack), the box or crop square it came from.
void draw_people(cv::Mat& rgb, const std::vector<infer::PosePrediction>& people,
                 const data::JointSet& joints, double min_score) {
  const int thickness = std::max(2, std::min(rgb.cols, rgb.rows) / 200);
  for (const auto& p : people) {
    const auto& c = p.person.crop;
    const cv::Rect2d square =
        p.person.box.width > 0 ? p.person.box
                               : cv::Rect2d(c.center.x - 100 * c.scale, c.center.y - 100 * c.scale,
                                            200 * c.scale, 200 * c.scale);
    cv::rectangle(rgb, cv::Rect(square), cv::Scalar(255, 220, 0), 1, cv::LINE_AA);
    const auto a = p.joints.accessor<float, 3>();
    const int64_t last = a.size(0) - 1;
    std::vector<cv::Point2d> at(static_cast<size_t>(joints.size()));
    std::vector<bool> shown(at.size());
    for (size_t j = 0; j < at.size(); ++j) {
      at[j] = {a[last][j][0], a[last][j][1]};
      shown[j] = a[last][j][2] >= min_score;
    }
    viz::draw_skeleton(rgb, at, shown, joints, thickness);
  }
}

struct Args {
  std::vector<std::string> inputs;
  std::string output, draw;
  double min_score = 0;
  PredictorArgs model;
  PersonArgs people;
  std::string save_results, image_ids;  // COCO keypoint results and where their ids come from
  double oks_nms = 0.9;
  double det_threshold = 0.3;  // a bottom-up model's people scoring less are dropped
  int64_t top_k = 0;           // a bottom-up model's candidates per image (0: CenterNet's 100)
  bool keep_res = false;       // a bottom-up model at the image's own size (CenterNet's keep_res)
};

// The model predict runs: top-down (a pose model, on the people the flags find) or bottom-up
// (CenterNet's multi_pose, which finds every person and its joints in one pass).
struct Models {
  std::optional<infer::Predictor> top_down;
  std::optional<infer::CenterNetDetector> bottom_up;
};

// A top-down model takes none of the bottom-up options.
void check_top_down(const Args& args) {
  TORCH_CHECK(args.top_k == 0 && !args.keep_res,
              "--top-k and --keep-res apply to a bottom-up model (CenterNet's multi_pose); ",
              args.model.weights, " holds a top-down pose model");
}

Models open_models(const Args& args, const GlobalOptions& global) {
  if (!io::holds_large_hourglass(args.model.weights)) {
    check_top_down(args);
    return {make_predictor(args.model, global), std::nullopt};
  }
  auto loaded = io::load_large_hourglass(args.model.weights);
  auto options = args.model.options;
  options.backend.engine.threads = global.threads;
  if (!infer::has_detection_heads(loaded.model->options)) {
    check_top_down(args);
    return {infer::Predictor::from_large_hourglass(std::move(loaded), args.model.weights, options),
            std::nullopt};
  }
  const auto& heads = loaded.model->options.heads();
  TORCH_CHECK(
      std::any_of(heads.begin(), heads.end(), [](const auto& h) { return h.name == "hps"; }),
      args.model.weights, " holds a CenterNet detector without joints (heads ",
      model::heads_text(heads), "): predict runs pose models; run it with forward");
  const auto& p = args.people;
  TORCH_CHECK(p.center.empty() && p.box.empty() && p.boxes.empty() && !p.whole_image,
              "--center, --box, --boxes and --whole-image choose the people of a top-down model; ",
              args.model.weights,
              " holds a bottom-up model (CenterNet's multi_pose), which finds "
              "them itself");
  TORCH_CHECK(!args.keep_res || options.input_size == 0,
              "--keep-res runs the network at the image's own size: give it or --size, not both");
  infer::CenterNetOptions o;
  if (options.input_size > 0) o.input_size = options.input_size;
  if (args.keep_res) o.input_size = 0;
  if (args.top_k > 0) o.top_k = args.top_k;
  o.flip = options.flip.value_or(false);
  o.backend = options.backend;
  return {std::nullopt, infer::CenterNetDetector(std::move(loaded.model), o)};
}

// COCO image ids by file name from an annotation or image-info file's ".images", and the id of
// its "person" category (1 without one).
std::pair<std::map<std::string, int64_t>, int64_t> read_image_ids(const std::string& path) {
  std::ifstream in(path);
  TORCH_CHECK(in, "cannot open --image-ids file ", path);
  const auto root = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  TORCH_CHECK(root.is_object() && root.contains("images") && root["images"].is_array(),
              "cannot read --image-ids file ", path,
              ": expected a COCO file with a list '.images' of {\"id\", \"file_name\"}");
  std::map<std::string, int64_t> ids;
  for (const auto& im : root["images"]) {
    TORCH_CHECK(im.is_object() && im.contains("id") && im["id"].is_number_integer() &&
                    im.contains("file_name") && im["file_name"].is_string(),
                "--image-ids file ", path, ": the entry ", runtime::json_text(im),
                " of '.images' needs an integer 'id' and a string 'file_name'");
    ids[fs::path(im["file_name"].get<std::string>()).filename().string()] = im["id"].get<int64_t>();
  }
  int64_t person = 1;
  if (root.contains("categories") && root["categories"].is_array())
    for (const auto& c : root["categories"])
      if (c.is_object() && c.value("name", "") == "person" && c.contains("id") &&
          c["id"].is_number_integer())
        person = c["id"].get<int64_t>();
  return {ids, person};
}

// Without -o: a line per image or video (people found, how, their mean joint score) instead of
// the JSON, which runs to hundreds of lines for one image.
void print_summary(const nlohmann::json& results) {
  std::map<std::string, std::pair<int64_t, int64_t>> per_input;  // frames, people
  std::vector<std::string> order;
  int64_t people = 0;
  for (const auto& r : results) {
    const std::string input = r.value("input", "?");
    if (!per_input.count(input)) order.push_back(input);
    auto& [frames, found] = per_input[input];
    ++frames;
    if (!r.contains("people")) continue;
    found += static_cast<int64_t>(r["people"].size());
    people += static_cast<int64_t>(r["people"].size());
  }
  for (const auto& input : order) {
    const auto& [frames, found] = per_input[input];
    std::cout << input << ": " << runtime::count(found, "person", "people")
              << (frames > 1 ? " in " + runtime::count(frames, "frame") : std::string()) << "\n";
  }
  std::cout << runtime::count(int64_t(order.size()), "input") << ", "
            << runtime::count(people, "person", "people")
            << "; the joints as JSON with -o FILE (or -o - for standard output)\n";
}

class Run {
 public:
  Run(const Args& args, const GlobalOptions& global, nlohmann::json& results)
      : args_(args), models_(open_models(args, global)), finder_(args.people), results_(results) {
    if (!args_.draw.empty()) fs::create_directories(args_.draw);
    if (!args_.image_ids.empty()) std::tie(image_ids_, category_) = read_image_ids(args_.image_ids);
    const auto& joints = this->joints();
    TORCH_CHECK(args_.save_results.empty() || args_.oks_nms >= 1 ||
                    joints.sigmas.size() == static_cast<size_t>(joints.size()),
                "--oks-nms needs the model's per-joint OKS sigmas and its joint set '", joints.name,
                "' has none: give --oks-nms 1");
  }

  // The people of every image in the COCO keypoint results format (with --save-results).
  const std::vector<eval::CocoDetection>& coco() const { return coco_; }

  const data::JointSet& joints() const {
    return models_.bottom_up ? models_.bottom_up->joints() : models_.top_down->joints();
  }

  // The predictions file's header: the joints, the model and how it ran.
  nlohmann::json header() const {
    if (models_.top_down)
      return infer::results_header(joints(), args_.model.weights, models_.top_down->options());
    const auto& centernet = models_.bottom_up->options();
    infer::PredictorOptions o;
    o.input_size = static_cast<int>(centernet.input_size);
    o.flip = centernet.flip;
    auto header = infer::results_header(joints(), args_.model.weights, o);
    header["decoder"] = "centernet-multi-pose";
    header["top_k"] = centernet.top_k;
    header["det_threshold"] = args_.det_threshold;
    return header;
  }

  // One input (a file or a folder); any failure is recorded and counted, never thrown, so that
  // the other inputs are still processed and written.
  void input(const std::string& path) {
    try {
      dispatch(path);
    } catch (const cv::Exception& e) {
      fail(path, "OpenCV: " + e.err);
    } catch (const c10::Error& e) {
      fail(path, e.msg());
    } catch (const std::exception& e) {
      fail(path, e.what());
    }
  }

  int failed() const { return failed_; }
  int done() const { return done_; }

 private:
  // Expands a folder into its images, each attributed its own failure.
  void dispatch(const std::string& path) {
    const fs::path p(path);
    std::error_code error;
    const auto status = fs::status(p, error);  // a link loop is an error here, not an exception
    if (fs::is_directory(status)) {
      std::vector<fs::path> files;
      // An entry that cannot be followed (a symbolic link loop, a dangling link) or is a device
      // is one input's error below, not the folder's.
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (has_extension(e.path(), kImageExtensions) && !e.is_directory(ec))
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty())
        return fail(path, "the folder has no images (" + c10::Join(", ", kImageExtensions) + ")");
      io::ProgressLine progress;
      for (size_t i = 0; i < files.size(); ++i) {
        if (files.size() > 1)
          progress.update("predict: " + path + ": image " + std::to_string(i + 1) + "/" +
                              std::to_string(files.size()),
                          i + 1 == files.size());
        input(files[i].string());
      }
      progress.finish();
    } else if (error && error != std::errc::no_such_file_or_directory) {
      fail(path, "cannot be read (" + error.message() + ")");
    } else if (!fs::exists(status)) {
      fail(path, "no such file or folder");
    } else if (has_extension(p, kVideoExtensions)) {
      video(path);
    } else if (has_extension(p, kImageExtensions)) {
      image(path);
    } else {
      fail(path, "unknown extension '" + p.extension().string() + "': images are " +
                     c10::Join(", ", kImageExtensions) + ", videos " +
                     c10::Join(", ", kVideoExtensions));
    }
  }

  void fail(const std::string& path, const std::string& why) {
    std::cerr << "hourglass: error: " << path << ": " << why << "\n";
    results_.push_back({{"input", path}, {"error", why}});
    ++failed_;
  }

  // `coco_id`: the image's COCO id, to add its people to the results (--save-results).
  nlohmann::json predict(const std::string& path, int64_t frame, const std::string& key,
                         cv::Mat& rgb, std::optional<int64_t> coco_id = std::nullopt) {
    const auto people = find_people(rgb, key, coco_id);
    nlohmann::json r = {{"input", path}};
    if (frame >= 0) r["frame"] = frame;
    r["width"] = rgb.cols;
    r["height"] = rgb.rows;
    r["people"] = nlohmann::json::array();
    for (const auto& p : people) r["people"].push_back(infer::person_to_json(p, joints()));
    if (!args_.draw.empty()) draw_people(rgb, people, joints(), args_.min_score);
    return r;
  }

  // The people of one image, added to the COCO results when it has an id: a bottom-up model's
  // every detection, as CenterNet's evaluation writes them.
  std::vector<infer::PosePrediction> find_people(const cv::Mat& rgb, const std::string& key,
                                                 std::optional<int64_t> coco_id) {
    if (models_.top_down) {
      auto people = models_.top_down->predict(rgb, finder_.find(key, rgb));
      if (coco_id) add_coco(*coco_id, people);
      return people;
    }
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    const auto detections = models_.bottom_up->detect(bgr);
    if (coco_id) {
      const auto found = eval::centernet_coco_people(detections, *coco_id, category_);
      coco_.insert(coco_.end(), found.begin(), found.end());
    }
    return infer::people_of(detections, args_.det_threshold);
  }

  // The id of --image-ids for the file name, else the file name's number (COCO's own names,
  // 000000397133.jpg); none otherwise.
  std::optional<int64_t> coco_image_id(const std::string& path) const {
    if (const auto it = image_ids_.find(fs::path(path).filename().string()); it != image_ids_.end())
      return it->second;
    const auto stem = fs::path(path).stem().string();
    const bool number =
        !stem.empty() && stem.size() < 18 &&
        std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    return number ? std::optional<int64_t>(std::stoll(stem)) : std::nullopt;
  }

  // Every box scores 1: user boxes carry no score, and the HOG detector's SVM margin is no
  // probability; the person score is then the mean of its joints' maxima above 0.2.
  void add_coco(int64_t id, const std::vector<infer::PosePrediction>& people) {
    eval::CocoPredictOptions o;
    o.oks_nms = args_.oks_nms;
    const auto found = eval::coco_people(people, std::vector<double>(people.size(), 1.0), id,
                                         category_, joints().sigmas, o);
    coco_.insert(coco_.end(), found.begin(), found.end());
  }

  void image(const std::string& path) {
    cv::Mat rgb;
    try {
      rgb = data::read_image_rgb(path);
    } catch (const data::ImageError& e) {
      return fail(path, e.what());
    }
    std::optional<int64_t> coco_id;
    if (!args_.save_results.empty() && !(coco_id = coco_image_id(path)))
      return fail(path, "--save-results needs its COCO image id: its file name is " +
                            (args_.image_ids.empty()
                                 ? std::string("not a number (give --image-ids ANNOTATIONS.json)")
                                 : "neither in " + args_.image_ids + " nor a number"));
    results_.push_back(predict(path, -1, fs::path(path).filename().string(), rgb, coco_id));
    if (!args_.draw.empty()) {
      const auto out = (fs::path(args_.draw) / fs::path(path).stem()).string() + ".jpg";
      cv::cvtColor(rgb, rgb, cv::COLOR_RGB2BGR);
      try {
        io::write_image_atomic(out, rgb);
      } catch (const std::runtime_error& e) {
        return fail(path, e.what());
      }
    }
    ++done_;
  }

  void video(const std::string& path) {
    if (!args_.save_results.empty())
      return fail(path, "--save-results writes COCO results of images, not of videos");
    cv::VideoCapture cap(path);
    if (!cap.isOpened()) return fail(path, "cannot open the video (corrupt, or no decoder)");
    const auto width = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_WIDTH));
    const auto height = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_HEIGHT));
    if (width * height > data::max_image_pixels())
      return fail(path, "the video's frames are " + std::to_string(width) + "×" +
                            std::to_string(height) + " pixels, more than the limit of " +
                            std::to_string(data::max_image_pixels()) + " (--max-pixels)");
    const auto total = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT));
    const double fps = cap.get(cv::CAP_PROP_FPS);
    cv::VideoWriter writer;
    std::string out;
    std::unique_ptr<io::AtomicFile> out_file;  // the drawn video, renamed into place once whole
    const std::string name = fs::path(path).filename().string();
    cv::Mat bgr, rgb;
    io::ProgressLine progress;
    int64_t frame = 0;
    for (; cap.read(bgr); ++frame) {
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      results_.push_back(predict(path, frame, name + "#" + std::to_string(frame), rgb));
      if (!args_.draw.empty()) {
        if (!writer.isOpened()) {
          out = (fs::path(args_.draw) / fs::path(path).stem()).string() + ".mp4";
          out_file = std::make_unique<io::AtomicFile>(out);
          writer.open(out_file->temp_path(), cv::VideoWriter::fourcc('m', 'p', '4', 'v'),
                      fps > 0 ? fps : 25, rgb.size());
          if (!writer.isOpened()) return fail(path, "cannot write the video " + out);
        }
        cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
        writer.write(bgr);
      }
      progress.update("predict: " + name + ": frame " + std::to_string(frame + 1) +
                      (total > 0 ? "/" + std::to_string(total) : std::string()));
    }
    if (frame > 0)
      progress.update("predict: " + name + ": " + std::to_string(frame) + " frames", true);
    progress.finish();
    if (frame == 0) return fail(path, "the video has no readable frame");
    writer.release();
    try {
      if (out_file) out_file->commit();
    } catch (const std::runtime_error& e) {
      return fail(path, e.what());
    }
    if (!out.empty()) std::cerr << "wrote " << out << "\n";
    ++done_;
  }

  const Args& args_;
  Models models_;
  PersonFinder finder_;
  nlohmann::json& results_;
  std::map<std::string, int64_t> image_ids_;
  int64_t category_ = 1;
  std::vector<eval::CocoDetection> coco_;
  int failed_ = 0, done_ = 0;
};

// The options of a bottom-up model (CenterNet's multi_pose).
void add_bottom_up_options(CLI::App& cmd, Args& args) {
  cmd.add_option("--det-threshold", args.det_threshold,
                 "a bottom-up model (CenterNet's multi_pose): keep the people scoring at least "
                 "this (CenterNet's vis_thresh)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--top-k", args.top_k,
                 "a bottom-up model: the people it considers per image, best first (CenterNet's "
                 "K; default 100)")
      ->check(CLI::PositiveNumber);
  cmd.add_flag("--keep-res", args.keep_res,
               "a bottom-up model: run at the image's own size, padded to the network's "
               "multiple (CenterNet's --keep_res), instead of fitted into --size (512)");
}

}  // namespace

void add_predict_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "predict", "estimate poses on images, folders of images and videos → JSON (+ drawings)");
  cmd->add_option("inputs", args->inputs, "images, folders of images, videos")->required();
  add_predictor_options(*cmd, args->model);
  add_max_pixels_option(*cmd);
  add_person_options(*cmd, args->people);
  cmd->add_option("--output,-o", args->output,
                  "JSON file to write ('-': standard output; default: a summary only)");
  cmd->add_option("--draw", args->draw,
                  "folder for the images (NAME.jpg) or videos (NAME.mp4) with skeletons drawn");
  cmd->add_option("--min-score", args->min_score, "draw only joints scoring at least this")
      ->capture_default_str();
  cmd->add_option("--save-results", args->save_results,
                  "also write the people of the images in the COCO keypoint results format "
                  "([{\"image_id\", \"category_id\", \"keypoints\", \"score\"}]; image id: "
                  "from --image-ids, else the file name's number)");
  cmd->add_option("--image-ids", args->image_ids,
                  "COCO annotation or image-info file whose '.images' give the image ids by file "
                  "name (and whose 'person' category the category id)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--oks-nms", args->oks_nms,
                  "with --save-results: drop a person whose OKS with a better-scored one of the "
                  "same image exceeds this (1 = keep all)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  add_bottom_up_options(*cmd, *args);
  cmd->callback([args, &global] {
    apply_threads(global);
    auto results = nlohmann::json::array();
    Run run(*args, global, results);
    for (const auto& input : args->inputs) run.input(input);
    auto doc = run.header();
    doc["results"] = std::move(results);
    if (args->output.empty()) {
      print_summary(doc["results"]);
    } else if (args->output == "-") {
      std::cout << runtime::json_text(doc, 1) << "\n";
    } else {
      io::write_file_atomic(args->output, runtime::json_text(doc, 1) + "\n");
      std::cerr << "wrote " << args->output << " (" << runtime::count(run.done(), "input") << ")\n";
    }
    if (!args->save_results.empty()) {
      eval::write_coco_detections(args->save_results, run.coco());
      std::cerr << "wrote " << args->save_results << " ("
                << runtime::count(int64_t(run.coco().size()), "person", "people") << ")\n";
    }
    TORCH_CHECK(run.failed() == 0, run.failed(), " of ",
                runtime::count(run.failed() + run.done(), "input"),
                " failed (see the messages above; the others were processed)");
  });
}

}  // namespace hg::cli
