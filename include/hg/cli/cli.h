#pragma once
/// The `hourglass` command-line tool. Each subcommand lives in its own file under src/cli/ and
/// registers itself through one of the add_*_command functions below.

#include <CLI/CLI.hpp>

#include "hg/infer/predictor.h"
#include "hg/model/hourglass.h"

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <c10/core/Device.h>

#include <functional>
#include <string>
#include <vector>

namespace hg::cli {

/// Runs the tool: parses argv, runs the chosen subcommand and returns the exit code. Errors are
/// printed as one line on stderr ("hourglass: error: ...") with exit code 1.
int run(int argc, char** argv);

/// Options every subcommand shares.
struct GlobalOptions {
  int threads = 0;  ///< 0 = as many as the machine has cores
};

/// Registers architecture flags (--stacks, --features, ...) that fill `options`.
void add_architecture_options(CLI::App& cmd, model::StackedHourglassOptions& options);

/// Each registers a subcommand on `app`; its callback does the work.
void add_info_command(CLI::App& app, const GlobalOptions& global);
void add_convert_command(CLI::App& app, const GlobalOptions& global);
void add_forward_command(CLI::App& app, const GlobalOptions& global);
void add_train_command(CLI::App& app, const GlobalOptions& global);
void add_demo_command(CLI::App& app, const GlobalOptions& global);
void add_data_command(CLI::App& app, const GlobalOptions& global);
void add_predict_command(CLI::App& app, const GlobalOptions& global);
void add_eval_command(CLI::App& app, const GlobalOptions& global);
void add_show_command(CLI::App& app, const GlobalOptions& global);
void add_bench_command(CLI::App& app, const GlobalOptions& global);

/// Model flags of the commands that run the network (predict, eval, show).
struct PredictorArgs {
  std::string weights;             ///< checkpoint, any supported format
  std::string backend = "auto";    ///< auto (engine on CPU, torch on CUDA), torch or engine
  std::string device = "cpu";      ///< cpu, cuda, cuda:N
  std::string precision = "f32";   ///< engine: f32 or bf16
  std::string algorithm = "auto";  ///< engine: auto, direct or winograd
  int size = 0;                    ///< input side; 0 = the checkpoint's meta, else 256
  bool no_flip = false;            ///< disable the flip test
  bool dark = false;               ///< DARK decoding instead of the quarter-pixel offset
  int batch = 8;                   ///< crops per network call
};
/// Registers --weights (required unless `weights_optional`), --backend, --device, --precision,
/// --algorithm, --size, --no-flip, --dark, --batch; returns the --weights option.
CLI::Option* add_predictor_options(CLI::App& cmd, PredictorArgs& args,
                                   bool weights_optional = false);
/// Loads the checkpoint and builds the predictor the flags describe (threads must be set).
infer::Predictor make_predictor(const PredictorArgs& args);

/// Flags saying where the people are (predict, show).
struct PersonArgs {
  std::vector<double> center;  ///< X,Y (with scale)
  double scale = 0;            ///< crop side 200·scale pixels
  std::vector<double> box;     ///< x,y,w,h
  std::string boxes;           ///< JSON file of boxes per image (see PersonFinder)
  bool whole_image = false;
  int max_people = 10;  ///< detector: at most this many per image
};
/// Registers --center, --scale, --box, --boxes, --whole-image, --max-people.
void add_person_options(CLI::App& cmd, PersonArgs& args);

/// Finds the people of each image as the flags say: --center/--scale, --box, --boxes FILE
/// (a JSON object mapping an image's file name, or "VIDEO#FRAME" for frame FRAME (from 0) of a
/// video, to a list of boxes [x, y, w, h] in image pixels; images it does not list fall back to
/// the detector), --whole-image, else OpenCV's HOG people detector; when the detector finds no
/// one, the whole image.
class PersonFinder {
 public:
  /// Validates the flags and reads the boxes file (throws naming it when malformed).
  explicit PersonFinder(const PersonArgs& args);
  /// The people of `rgb`, known as `key` (the image's file name, or "VIDEO#FRAME") in --boxes.
  std::vector<infer::PersonCrop> find(const std::string& key, const cv::Mat& rgb) const;

 private:
  PersonArgs args_;
  nlohmann::json boxes_;
};

/// Sets LibTorch's intra-op thread count (0 = cores; Debian's LibTorch starts with one) and
/// flushes denormal floats to zero.
void apply_threads(const GlobalOptions& global);

/// Parses "cpu", "cuda" or "cuda:N"; a CUDA device without CUDA support in LibTorch is an error
/// that says so.
c10::Device parse_device(const std::string& name);

/// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);

}  // namespace hg::cli
