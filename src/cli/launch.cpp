#include "cli/launch.h"

#include <c10/util/Exception.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

extern char** environ;

namespace hg::cli {
namespace {

std::atomic<bool> g_terminate{false};
extern "C" void on_terminate(int) {
  g_terminate = true;
}

// A port the kernel reports free on 127.0.0.1 (rank 0 binds it right after; a race with another
// program taking it in between is reported by the rendezvous).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  TORCH_CHECK(fd >= 0, "cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  TORCH_CHECK(ok, "cannot find a free port on 127.0.0.1: ", std::strerror(errno));
  return ntohs(addr.sin_port);
}

// One worker's output stream, forwarded a line at a time behind its rank.
struct Stream {
  int fd = -1;
  FILE* to = nullptr;
  std::string prefix, pending;

  // false at end of file.
  bool forward() {
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (!pending.empty()) emit(pending + "\n");
      ::close(fd);
      return false;
    }
    pending.append(buf, static_cast<size_t>(n));
    // A progress line ends in '\r': forwarded as a line of its own.
    for (size_t end; (end = pending.find_first_of("\n\r")) != std::string::npos;) {
      emit(pending.substr(0, end) + "\n");
      pending.erase(0, end + 1);
    }
    return true;
  }
  void emit(const std::string& line) const {
    if (line == "\n") return;
    std::fputs((prefix + line).c_str(), to);
    std::fflush(to);
  }
};

}  // namespace

std::vector<std::string> command_line_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t begin = 0; begin < all.size();) {
    const size_t end = all.find('\0', begin);
    args.push_back(all.substr(begin, end - begin));
    begin = end == std::string::npos ? all.size() : end + 1;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

void run_local_workers(int nproc, const std::vector<std::string>& args) {
  TORCH_CHECK(nproc >= 1, "--nproc must be at least 1, got ", nproc);
  TORCH_CHECK(!args.empty(), "cannot read this program's command line");
  const std::string port = std::to_string(free_port());
  // The workers meet in a file of a fresh private folder (a c10d::FileStore): no listening
  // socket, which LibTorch's TCPStore would open on every interface.
  char folder[] = "/tmp/hourglass-rendezvous-XXXXXX";
  TORCH_CHECK(::mkdtemp(folder) != nullptr,
              "cannot create a rendezvous folder in /tmp: ", std::strerror(errno));
  const std::string store_file = std::string(folder) + "/store";
  std::vector<pid_t> pids;
  std::vector<Stream> streams;
  std::fflush(nullptr);
  for (int r = 0; r < nproc; ++r) {
    // Everything the child needs is built before fork: only async-signal-safe calls follow it.
    std::vector<std::string> env = {"RANK=" + std::to_string(r),
                                    "LOCAL_RANK=" + std::to_string(r),
                                    "WORLD_SIZE=" + std::to_string(nproc),
                                    "LOCAL_WORLD_SIZE=" + std::to_string(nproc),
                                    "MASTER_ADDR=127.0.0.1",
                                    "MASTER_PORT=" + port,
                                    "HG_RENDEZVOUS_FILE=" + store_file};
    for (char** e = environ; *e; ++e) {
      const std::string var = *e;
      const std::string name = var.substr(0, var.find('='));
      if (name != "RANK" && name != "LOCAL_RANK" && name != "WORLD_SIZE" &&
          name != "LOCAL_WORLD_SIZE" && name != "MASTER_ADDR" && name != "MASTER_PORT" &&
          name != "HG_RENDEZVOUS_FILE")
        env.push_back(var);
    }
    std::vector<char*> argv, envp;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int out[2], err[2];
    // Close-on-exec: no worker inherits another's pipes (dup2 clears it on 1 and 2).
    TORCH_CHECK(::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0,
                "cannot create a pipe for worker ", r, ": ", std::strerror(errno));
    const pid_t pid = ::fork();
    TORCH_CHECK(pid >= 0, "cannot start worker ", r, ": ", std::strerror(errno));
    if (pid == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execve("/proc/self/exe", argv.data(), envp.data());
      static const char kFailed[] = "hourglass: error: cannot start a worker (execve failed)\n";
      [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, kFailed, sizeof kFailed - 1);
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    pids.push_back(pid);
    const std::string prefix = "[rank " + std::to_string(r) + "] ";
    streams.push_back({out[0], stdout, prefix, {}});
    streams.push_back({err[0], stderr, prefix, {}});
  }
  // Ctrl-C reaches the workers from the terminal and they checkpoint; this process stays to
  // forward what they print. A SIGTERM sent to it alone is passed on.
  auto old_int = std::signal(SIGINT, SIG_IGN);
  auto old_term = std::signal(SIGTERM, on_terminate);
  std::vector<bool> open(streams.size(), true);
  bool terminated = false;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < streams.size(); ++i)
      if (open[i]) {
        fds.push_back({streams[i].fd, POLLIN, 0});
        which.push_back(i);
      }
    if (fds.empty()) break;
    if (g_terminate && !terminated) {
      for (pid_t pid : pids) ::kill(pid, SIGTERM);
      terminated = true;
    }
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k)
      if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
        open[which[k]] = streams[which[k]].forward();
  }
  std::string failed;
  for (int r = 0; r < nproc; ++r) {
    int status = 0;
    ::waitpid(pids[r], &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    failed += (failed.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) +
              (WIFSIGNALED(status) ? " (killed by signal " + std::to_string(WTERMSIG(status)) + ")"
                                   : " (exit status " + std::to_string(WEXITSTATUS(status)) + ")");
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  std::error_code ec;
  std::filesystem::remove_all(folder, ec);
  TORCH_CHECK(failed.empty(), "worker ", failed, " of ", nproc,
              " failed (their messages are above, behind [rank R])");
}

}  // namespace hg::cli
