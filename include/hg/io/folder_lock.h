#pragma once
/// An exclusive lock on a folder for the life of an object: a training run holds one on its run
/// folder, so that a second run there is refused instead of mixing its log and checkpoints in.

#include <string>

namespace hg::io {

/// flock(2) on FOLDER/.lock, taken without waiting. The file stays behind, unlocked, when its
/// holder ends in any way (the kernel releases the lock of a killed process); it holds the
/// holder's process id for the error message of the next taker.
class FolderLock {
 public:
  /// Creates FOLDER/.lock if needed and locks it. Throws, naming the folder and the process that
  /// holds it, when another process (or another FolderLock in this one) has it.
  explicit FolderLock(const std::string& folder);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  /// The lock file's name inside the folder.
  static constexpr const char* kName = ".lock";

 private:
  int fd_ = -1;
};

}  // namespace hg::io
