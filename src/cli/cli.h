#pragma once
/// The `hourglass` command-line tool. Each subcommand lives in its own file under src/cli/ and
/// registers itself through one of the add_*_command functions below.

#include <CLI/CLI.hpp>

#include "cli/run.h"
#include "hg/infer/predictor.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/names.h"
#include "hg/runtime/text.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace hg::cli {

/// A command-line mistake the library finds after parsing (an unknown --set key, a recipe):
/// exit code 2, as CLI11's parse errors.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs `f`, turning any error it throws into a UsageError with the same message.
template <typename F>
auto as_usage(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw UsageError(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

/// The enum an add_choice target holds: E itself, or that of std::optional<E>.
template <typename T>
struct Choice {
  using Enum = T;
};
template <typename T>
struct Choice<std::optional<T>> {
  using Enum = T;
};

/// Options every subcommand shares.
struct GlobalOptions {
  int threads = 0;  ///< 0 = as many as the machine has cores
};

/// A flag taking one of the names of `target`'s enum (its name_table), stored typed in `target`
/// (an enum, or a std::optional of one: unset until given); CLI11 refuses any other name,
/// listing the accepted ones. Returns the option.
template <typename Target>
CLI::Option* add_choice(CLI::App& cmd, const std::string& flag, Target& target,
                        const std::string& help) {
  using E = typename Choice<Target>::Enum;
  const auto& table = name_table(E{});
  auto* option = cmd.add_option_function<std::string>(
                        flag,
                        [&target, &table](const std::string& name) {
                          target = runtime::parse_in(table, name, name);
                        },
                        help)
                     ->check(CLI::IsMember(runtime::names_in(table)));
  if constexpr (std::is_enum_v<Target>) option->default_str(runtime::name_in(table, target));
  return option;
}

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
void add_export_command(CLI::App& app, const GlobalOptions& global);
void add_serve_command(CLI::App& app, const GlobalOptions& global);
void add_ablation_command(CLI::App& app, const GlobalOptions& global);

/// Registers the runtime flags, one definition for every command that runs the network:
/// --backend (auto, torch, engine; default auto), --device, --precision (f32, bf16) and
/// --algorithm (auto, direct, winograd), validated by CLI11 and stored typed in `options`.
void add_backend_options(CLI::App& cmd, infer::BackendOptions& options);

/// Model flags of the commands that run the predictor (predict, eval, show).
struct PredictorArgs {
  std::string weights;  ///< checkpoint, any supported format
  /// Input size (0 = the checkpoint's), flip test, batch and the runtime.
  infer::PredictorOptions options;
};
/// Registers --weights (required unless `weights_optional`), the backend flags, --size,
/// --no-flip, --flip-shift, --dark and, for commands that predict many people (`batched`),
/// --batch; returns the --weights option.
CLI::Option* add_predictor_options(CLI::App& cmd, PredictorArgs& args,
                                   bool weights_optional = false, bool batched = true);
/// `--max-pixels N`: the pixel budget of every image read (data::set_max_image_pixels; default
/// limits::kDefaultMaxImagePixels): larger images are refused from their header, undecoded.
void add_max_pixels_option(CLI::App& cmd);
/// Loads the checkpoint and builds the predictor the flags describe, with the tool's --threads.
infer::Predictor make_predictor(const PredictorArgs& args, const GlobalOptions& global);

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
  std::map<std::string, std::vector<cv::Rect2d>> boxes_;
};

/// runtime::apply_threads with the tool's --threads.
void apply_threads(const GlobalOptions& global);

using runtime::with_commas;

}  // namespace hg::cli
