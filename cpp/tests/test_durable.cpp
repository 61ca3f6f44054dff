// Durable writes: a failure while writing leaves the old version and no temporary files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aneforge/durable.h"
#include "aneforge/error.h"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / (std::string("af_durable_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

size_t entries(const fs::path& d) { return static_cast<size_t>(std::distance(fs::directory_iterator(d), fs::directory_iterator())); }

}  // namespace

TEST(Durable, FailedFillKeepsTheOldDirectory) {
  fs::path d = fresh_dir("fill");
  fs::path pkg = d / "m.mlpackage";
  af::io::write_directory(pkg.string(), [](const std::string& t) { af::io::write_new_file(t + "/a", "one"); },
                          [](const std::string&) { return true; }, false);
  EXPECT_THROW(af::io::write_directory(
                   pkg.string(),
                   [](const std::string& t) {
                     af::io::write_new_file(t + "/a", "two");
                     throw af::IOError("disk full");
                   },
                   [](const std::string&) { return true; }, false),
               af::IOError);
  EXPECT_EQ(slurp(pkg / "a"), "one");
  EXPECT_EQ(entries(d), 1u);  // no temporary directory left behind
  af::io::write_directory(pkg.string(), [](const std::string& t) { af::io::write_new_file(t + "/b", "three"); },
                          [](const std::string&) { return true; }, false);
  EXPECT_FALSE(fs::exists(pkg / "a"));
  EXPECT_EQ(slurp(pkg / "b"), "three");
  EXPECT_EQ(entries(d), 1u);
  fs::remove_all(d);
}

TEST(Durable, RefusedReplacementChangesNothing) {
  fs::path d = fresh_dir("refuse");
  std::ofstream(d / "f") << "user";
  EXPECT_THROW(af::io::write_file((d / "f").string(), "new", [](const std::string& old) { return old == "ours"; }), af::IOError);
  EXPECT_EQ(slurp(d / "f"), "user");
  af::io::write_file((d / "f").string(), "new", [](const std::string& old) { return old == "user"; });
  EXPECT_EQ(slurp(d / "f"), "new");
  EXPECT_THROW(af::io::write_file(d.string(), "x", [](const std::string&) { return true; }), af::IOError);
  EXPECT_THROW(af::io::write_file(".", "x", [](const std::string&) { return true; }), af::IOError);
  EXPECT_EQ(entries(d), 1u);
  fs::remove_all(d);
}
