#pragma once
/// Atomic output files: every file the library and the tool write (checkpoints, predictions,
/// results, reports, images, exports, configs) goes through a temporary file in the target's
/// folder, which is flushed to disk (fsync) and renamed over the target only once complete. A
/// failed write (full disk, file-size limit, read-only folder, kill) leaves an existing target
/// byte-identical and no partial or 0-byte target; the error names the target and the OS reason.
///
/// Temporary files are named "<stem>.tmp-<pid>-<n><extension>" beside the target (the extension
/// kept for writers that choose a format by it: OpenCV's VideoWriter); remove_stale_temporaries
/// cleans up those of processes that no longer run (killed mid-write).
///
/// Test-only: the environment variable HG_TEST_WRITE_DELAY_MS=<ms> makes every atomic write pause
/// that long with its temporary file half written (AtomicFile::write), so that tests can kill a
/// process during a write.

#include <string>
#include <vector>

namespace cv {
class Mat;
}

namespace hg::io {

/// One atomic write in progress: write the content to temp_path() (with any writer), then
/// commit(). Destroyed without a commit (an exception, an early return), it removes the
/// temporary file and leaves the target untouched.
class AtomicFile {
 public:
  /// Prepares a write of `path` (a symbolic link is followed: its target is replaced). A path
  /// that is a pipe or a device (/dev/stdout, a FIFO) is written in place instead, never
  /// replaced; a folder is refused.
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// The file written to in the meantime (same folder and extension as path()).
  const std::string& temp_path() const { return temp_; }
  /// The target file.
  const std::string& path() const { return path_; }

  /// Writes `bytes` to temp_path() (created, or truncated). Throws as fail() on an OS error.
  void write(const std::string& bytes);
  /// Flushes temp_path() to disk and renames it over path(); throws as fail() on an error.
  void commit();
  /// Removes the temporary file and throws std::runtime_error "cannot write <path>: <reason>",
  /// saying whether an existing path() was left as it was.
  [[noreturn]] void fail(const std::string& reason);

 private:
  void write_in_place(const std::string& bytes);

  std::string path_, temp_;
  bool done_ = false;
  bool in_place_ = false;  // path_ is a pipe or device
};

/// Writes `bytes` to `path` atomically. Throws std::runtime_error naming `path` and the reason
/// (e.g. "No space left on device"); an existing `path` is then unchanged.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// Writes `image` (8-bit BGR or gray) to `path` atomically, encoded by its extension as
/// cv::imwrite would.
void write_image_atomic(const std::string& path, const cv::Mat& image);

/// Removes the temporary files ("*.tmp-<pid>-<n>*", and older versions' "*.tmp-<pid>") in `folder`
/// whose writing process no longer runs (or is this one: nothing is being written yet when this is
/// called at a start). Returns the paths removed.
std::vector<std::string> remove_stale_temporaries(const std::string& folder);

}  // namespace hg::io
