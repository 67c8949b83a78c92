#include "hg/io/folder_lock.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace hg::io {

FolderLock::FolderLock(const std::string& folder) {
  const auto path = (std::filesystem::path(folder) / kName).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  TORCH_CHECK(fd_ >= 0, "cannot lock ", folder, ": cannot open ", path, " (", std::strerror(errno),
              ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    TORCH_CHECK(error != EWOULDBLOCK, folder, " is in use by another training run",
                n > 0 ? std::string(" (process ") + holder + ")" : std::string(),
                ": wait for it to end, or choose another folder");
    TORCH_CHECK(false, "cannot lock ", path, " (", std::strerror(error), ")");
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace hg::io
