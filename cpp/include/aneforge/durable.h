// Durable, non-destructive writes (docs/reliability.md). A file or package is written under a
// unique temporary name in the destination's directory, flushed to disk (fsync of the data,
// then of the directory), and moved into place with rename: a crash or power loss leaves the
// old version or the new one, never a torn or missing one. Nothing the library did not
// create is replaced: callers decide what may be replaced with `Replace`.
#pragma once
#include <functional>
#include <string>

namespace af::io {

enum class Existing { none, file, directory, other };
Existing existing(const std::string& path);

// Writes `data` to `path` (temp file, fsync, close checked, rename, fsync of the directory).
// `may_replace` is asked before an existing file is replaced; returning false throws
// IOError naming the path. A directory at `path` is never replaced.
void write_file(const std::string& path, const std::string& data,
                const std::function<bool(const std::string& existing_bytes)>& may_replace);

// Builds a directory with `fill(tmp_dir)` (which writes files with write_new_file) and moves
// it to `path`. An existing directory is swapped out atomically and then removed only if
// `may_replace_dir(path)` agrees; an existing file only if `replace_file` is true.
void write_directory(const std::string& path, const std::function<void(const std::string&)>& fill,
                     const std::function<bool(const std::string&)>& may_replace_dir, bool replace_file);

// A new file inside a directory being built: written and fsynced, errors checked.
void write_new_file(const std::string& path, const std::string& data);

// Reads a whole file; IOError naming it if it cannot.
std::string read_file(const std::string& path, size_t limit);

}  // namespace af::io
