#pragma once
/// Progress of long work on standard error, readable both on a terminal and in a log file.

#include <chrono>
#include <string>

namespace hg::io {

/// One progress line on standard error. On a terminal it is rewritten in place, at most four
/// times a second; elsewhere (a log file, CI) each update is a new line, at most one every 15 s,
/// so that logs stay short. Force the last update so that a log shows the work's end.
class ProgressLine {
 public:
  ProgressLine();
  /// Shows `text` if enough time has passed since the last line shown, or if `force`.
  void update(const std::string& text, bool force = false);
  /// Ends the line on a terminal (call once, after the last update).
  void finish();

 private:
  bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace hg::io
