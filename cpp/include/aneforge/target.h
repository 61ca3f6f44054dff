// The 28 ANE compiler targets: a static capability table, chip names, limits, and the
// per-target cost model. Facts and their public sources: docs/targets.md.
#pragma once
#include <string>
#include <vector>

#include "aneforge/program.h"

namespace af {

// Capability classes, ordered: what an op needs is "at least this family".
enum class Family : int { older = 12, h13 = 13, h14 = 14, h15 = 15, h16 = 16, reference = 99 };

struct Target {
  std::string name;           // compiler TargetArchitecture string, e.g. "h16g"
  Family family;
  bool mil;                   // MIL compiles for it (H13 and later)
  std::vector<std::string> chips;  // marketing names that map to it
  std::string chips_evidence;      // which of those mappings someone measured, which are inferred
  int64_t spatial_max;        // W, H, matmul K
  int64_t channel_max;
  int64_t kernel_w_max;       // conv kernel width
  int max_rank;
  int64_t tile_bytes;         // operands larger than this are tiled through DRAM
  std::vector<std::string> streams;  // compressed weight formats decoded natively
  double fp16_tflops;         // MAC peak
  double bandwidth_gbs;       // weight/activation streaming the engine achieves
  double dispatch_us;         // fixed cost per call
  double layer_us;            // fixed cost per fused layer (task descriptors)
  std::string rounding;       // reported tie rounding of fp16 results
  std::string sources;        // where the numbers come from ([A] [R] [I] [?] as in the reference)
};

const std::vector<Target>& targets();
const Target& default_target();
// By target name ("h16g") or chip name ("M4", "M1 Max", "A17 Pro"); case-insensitive.
// Throws ValueError listing the valid names.
const Target& find_target(const std::string& name_or_chip);
std::string family_name(Family f);

// Checks every layer of the program against the target: op support and shape limits.
// Throws TargetError naming op, shape, target and the limit.
void check_target(const Program& p, const Target& t);

struct LayerCost {
  std::string layer;
  double flops = 0, bytes = 0, us = 0;
  bool compute_bound = false;
};
struct Estimate {
  std::string target;
  double total_us = 0;
  double dispatch_us = 0;
  std::vector<LayerCost> layers;
};
// overhead + sum over fused layers of (layer overhead + max(flops / peak, bytes / bandwidth)).
Estimate estimate(const Program& p, const Target& t);

}  // namespace af
