// libFuzzer target: the program-file reader, then the simulator on what it accepts.
// The length field and the CRC are fixed up before parsing, so mutations reach the parser
// itself (a crafted file carries a valid checksum too). Build and run: scripts/fuzz.sh.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "aneforge/error.h"
#include "aneforge/program.h"
#include "aneforge/runtime.h"

namespace {

uint32_t crc32(const char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(p[i]);
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

constexpr int64_t kRunLimit = int64_t(1) << 22;  // elements the harness allocates to run a program

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string buf(reinterpret_cast<const char*>(data), size);
  if (buf.size() >= 24 && std::memcmp(buf.data(), "AFPROGRM", 8) == 0) {
    int64_t body = static_cast<int64_t>(buf.size()) - 24;
    std::memcpy(&buf[12], &body, 8);
    uint32_t crc = crc32(buf.data(), buf.size() - 4);
    std::memcpy(&buf[buf.size() - 4], &crc, 4);
  }
  std::shared_ptr<af::Program> p;
  try {
    p = af::parse_program(buf, "fuzz");
  } catch (const af::Error&) {
    return 0;  // refused with a clear error: the expected outcome for most inputs
  }
  int64_t total = 0;
  for (auto n : p->slot_elems) total += n;
  for (int v : p->inputs) total += af::numel(p->values[v].type.shape);
  for (int v : p->outputs) total += af::numel(p->values[v].type.shape);
  if (total > kRunLimit) return 0;
  std::vector<std::vector<float>> ins, outs;
  std::vector<const float*> in_ptrs;
  std::vector<float*> out_ptrs;
  for (int v : p->inputs) ins.emplace_back(static_cast<size_t>(af::numel(p->values[v].type.shape)), 0.5f);
  for (int v : p->outputs) outs.emplace_back(static_cast<size_t>(af::numel(p->values[v].type.shape)), 0.0f);
  for (auto& b : ins) in_ptrs.push_back(b.data());
  for (auto& b : outs) out_ptrs.push_back(b.data());
  try {
    af::backend("sim").load(p)->run(in_ptrs.data(), out_ptrs.data());
  } catch (const af::Error&) {
  }
  return 0;
}
