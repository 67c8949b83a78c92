#include "hg/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <thread>

namespace hg::io {
namespace fs = std::filesystem;
namespace {

std::string os_reason(int err) {
  return std::strerror(err);
}

void test_delay() {
  static const long ms = [] {
    const char* v = std::getenv("HG_TEST_WRITE_DELAY_MS");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string temp_name(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  return (target.parent_path() / (target.stem().string() + ".tmp-" + std::to_string(::getpid()) +
                                  "-" + std::to_string(counter++) + target.extension().string()))
      .string();
}

// Writes all of `bytes` to `fd`; returns 0 or the errno of the failure. A file-size limit
// (RLIMIT_FSIZE) reports EFBIG here when SIGXFSZ is ignored.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// The folder's entry for the renamed file reaches the disk too (without it a power cut may still
// show the old file). Best effort: some file systems refuse fsync on a folder.
void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  std::error_code ec;
  if (fs::is_symlink(path_, ec)) path_ = fs::weakly_canonical(path_, ec).string();
  const auto status = fs::status(path_, ec);
  if (fs::is_directory(status))
    throw std::runtime_error("cannot write " + path_ + ": it is a folder; give a file name");
  // A pipe or a device (/dev/stdout, a FIFO, /dev/null) is written in place: replacing it by a
  // renamed regular file would remove it.
  in_place_ = fs::exists(status) && !fs::is_regular_file(status);
  temp_ = temp_name(path_);
}

AtomicFile::~AtomicFile() {
  if (!done_) ::unlink(temp_.c_str());
}

void AtomicFile::fail(const std::string& reason) {
  ::unlink(temp_.c_str());
  done_ = true;
  std::error_code ec;
  const bool existed = fs::exists(path_, ec);
  throw std::runtime_error(
      "cannot write " + path_ + ": " + reason +
      (existed ? " (the existing file was left as it was)" : " (no file was written)"));
}

void AtomicFile::write_in_place(const std::string& bytes) {
  done_ = true;  // nothing of this object's to clean up
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot write " + path_ + ": " + os_reason(errno));
  int err = write_all(fd, bytes.data(), bytes.size());
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) throw std::runtime_error("cannot write " + path_ + ": " + os_reason(err));
}

void AtomicFile::write(const std::string& bytes) {
  if (in_place_) return write_in_place(bytes);
  const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(os_reason(errno));
  const size_t half = bytes.size() / 2;
  int err = write_all(fd, bytes.data(), half);
  if (err == 0) {
    test_delay();
    err = write_all(fd, bytes.data() + half, bytes.size() - half);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) fail(os_reason(err));
}

void AtomicFile::commit() {
  if (done_) return;  // written in place
  if (in_place_) {    // a writer that managed temp_path() itself: its bytes go to the device
    std::ifstream in(temp_, std::ios::binary);
    if (!in) fail("the writer produced no file");
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ::unlink(temp_.c_str());
    return write_in_place(bytes);
  }
  // Writers that manage the file themselves (HDF5, OpenCV) are synced here; for write() this
  // second fsync finds nothing to flush.
  const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(errno == ENOENT ? "the writer produced no file" : os_reason(errno));
  const int err = ::fsync(fd) != 0 ? errno : 0;
  ::close(fd);
  if (err != 0) fail(os_reason(err));
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(os_reason(errno));
  done_ = true;
  sync_folder(fs::path(path_).parent_path());
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

void write_image_atomic(const std::string& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(fs::path(path).extension().string(), image, bytes);
  } catch (const cv::Exception& e) {
    throw std::runtime_error("cannot write " + path + ": " + e.what());
  }
  if (!ok) throw std::runtime_error("cannot write " + path + ": OpenCV cannot encode this format");
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

std::vector<std::string> remove_stale_temporaries(const std::string& folder) {
  static const std::regex kTemp(R"(.*\.tmp-([0-9]{1,9})(-[0-9]+)?(\.[^.]*)?)");
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!entry.is_regular_file(ec) || !std::regex_match(name, m, kTemp)) continue;
    const auto pid = static_cast<pid_t>(std::stol(m[1].str()));
    const bool running = pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
    if (running) continue;
    if (fs::remove(entry.path(), ec)) removed.push_back(entry.path().string());
  }
  return removed;
}

}  // namespace hg::io
