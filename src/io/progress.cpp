#include "hg/io/progress.h"

#include <unistd.h>

#include <cstdio>

namespace hg::io {

ProgressLine::ProgressLine() : tty_(::isatty(::fileno(stderr)) != 0) {}

void ProgressLine::update(const std::string& text, bool force) {
  const auto now = std::chrono::steady_clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(15000);
  if (shown_ && !force && now - last_ < interval) return;
  last_ = now;
  shown_ = true;
  // \33[K clears what a longer previous line left on the terminal.
  std::fprintf(stderr, tty_ ? "\r%s\33[K" : "%s\n", text.c_str());
  std::fflush(stderr);
}

void ProgressLine::finish() {
  if (tty_ && shown_) std::fputs("\n", stderr);
  shown_ = false;
}

}  // namespace hg::io
