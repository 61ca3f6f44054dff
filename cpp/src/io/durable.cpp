#include "aneforge/durable.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "aneforge/error.h"

namespace af::io {

namespace fs = std::filesystem;

namespace {

std::string err(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IOError(err("cannot write", path));
    off += static_cast<size_t>(n);
  }
}

void sync_fd_and_close(int fd, const std::string& path) {
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    throw IOError(err("cannot flush", path));
  }
  if (::close(fd) != 0) throw IOError(err("cannot close", path));
}

void sync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some filesystems do not open directories; the rename itself stands
  ::fsync(fd);
  ::close(fd);
}

std::string parent_of(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  return p.empty() ? std::string(".") : p.string();
}

std::string base_of(const std::string& path) { return fs::path(path).filename().string(); }

// Atomically exchanges two paths where the OS can (Linux renameat2, macOS renamex_np).
bool swap_paths_atomically(const std::string& a, const std::string& b) {
#if defined(__linux__) && defined(SYS_renameat2)
  return ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), 2 /* RENAME_EXCHANGE */) == 0;
#elif defined(__APPLE__)
  return ::renamex_np(a.c_str(), b.c_str(), 0x00000002 /* RENAME_SWAP */) == 0;
#else
  (void)a, (void)b;
  return false;
#endif
}

void check_target_name(const std::string& path) {
  std::string base = base_of(fs::path(path).lexically_normal().string());
  if (path.empty() || base.empty() || base == "." || base == "..")
    throw IOError("refusing to write to '" + path + "': it names a directory, not a file or package to create");
}

}  // namespace

Existing existing(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Existing::none;
  if (S_ISREG(st.st_mode)) return Existing::file;
  if (S_ISDIR(st.st_mode)) return Existing::directory;
  return Existing::other;
}

std::string read_file(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IOError(err("cannot open", path));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IOError("cannot read '" + path + "': not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > limit) {
    ::close(fd);
    throw IOError("cannot read '" + path + "': " + std::to_string(st.st_size) + " bytes is over the " +
                  std::to_string(limit) + "-byte limit");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::read(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(off);
  return data;
}

void write_new_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw IOError(err("cannot create", path));
  try {
    write_all(fd, data, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  sync_fd_and_close(fd, path);
}

void write_file(const std::string& path, const std::string& data,
                const std::function<bool(const std::string&)>& may_replace) {
  check_target_name(path);
  Existing e = existing(path);
  if (e == Existing::directory || e == Existing::other)
    throw IOError("refusing to write '" + path + "': a directory or special file is there");
  if (e == Existing::file) {
    std::string old;
    try {
      old = read_file(path, 1u << 30);
    } catch (const IOError&) {
    }
    if (!may_replace(old)) throw IOError("refusing to replace '" + path + "': it was not written by ANEForge (pass overwrite=True to replace it)");
  }
  std::string dir = parent_of(path);
  std::string tmpl = dir + "/." + base_of(path) + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) throw IOError("cannot write '" + path + "' (no temporary file beside it: " + std::strerror(errno) + ")");
  std::string tmp(name.data());
  try {
    ::fchmod(fd, 0644);
    write_all(fd, data, tmp);
    sync_fd_and_close(fd, tmp);
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw IOError(err("cannot move the new file to", path));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  sync_dir(dir);
}

void write_directory(const std::string& path, const std::function<void(const std::string&)>& fill,
                     const std::function<bool(const std::string&)>& may_replace_dir, bool replace_file) {
  check_target_name(path);
  Existing e = existing(path);
  if (e == Existing::other) throw IOError("refusing to write '" + path + "': a special file or link is there");
  if (e == Existing::file && !replace_file)
    throw IOError("refusing to replace the file '" + path + "' with a package (pass overwrite=True to replace a file)");
  if (e == Existing::directory && !may_replace_dir(path))
    throw IOError("refusing to replace the directory '" + path + "': it is not a package ANEForge wrote "
                  "(it holds other files); choose a new path or remove it yourself");
  std::string dir = parent_of(path);
  std::string tmpl = dir + "/." + base_of(path) + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (!::mkdtemp(name.data())) throw IOError("cannot write '" + path + "' (no temporary directory beside it: " + std::strerror(errno) + ")");
  std::string tmp(name.data());
  std::error_code ec;
  try {
    ::chmod(tmp.c_str(), 0755);
    fill(tmp);
    for (auto it = fs::recursive_directory_iterator(tmp); it != fs::recursive_directory_iterator(); ++it)
      if (it->is_directory()) sync_dir(it->path().string());
    sync_dir(tmp);
    if (e == Existing::none) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) throw IOError(err("cannot move the new package to", path));
    } else if (swap_paths_atomically(tmp, path)) {
      fs::remove_all(tmp, ec);  // tmp now holds the old package (or file)
    } else {
      // No atomic exchange here: move the old one aside, move the new one in, then drop the old.
      std::string old = tmp + ".old";
      if (::rename(path.c_str(), old.c_str()) != 0) throw IOError(err("cannot move aside", path));
      if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int saved = errno;
        ::rename(old.c_str(), path.c_str());
        errno = saved;
        throw IOError(err("cannot move the new package to", path));
      }
      fs::remove_all(old, ec);
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  sync_dir(dir);
}

}  // namespace af::io
