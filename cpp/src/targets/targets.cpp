// The target table. One row per compiler target; numbers carry their source tag:
// [A] Apple or two independent sources, [R] one reverse-engineering source, [I] inferred,
// [?] disputed. See docs/targets.md for the table with explanations.
#include <algorithm>
#include <cctype>
#include <map>

#include "aneforge/error.h"
#include "aneforge/target.h"

namespace af {

namespace {

const char* kLimitsSrc =
    "limits: ANEForge _targets.py / ane-guide s17 binary search [R]; 2 MiB tiling: maderix Part 4, 751K [R]";

Target row(std::string name, Family fam, std::vector<std::string> chips, double tflops, double bw, double dispatch,
           std::string rounding, std::string src) {
  Target t;
  t.name = std::move(name);
  t.family = fam;
  t.mil = fam >= Family::h13 && fam != Family::reference;
  t.chips = std::move(chips);
  bool h16 = fam >= Family::h16 && fam != Family::reference;
  t.spatial_max = h16 ? 65536 : 16384;
  t.channel_max = 65536;
  t.kernel_w_max = h16 ? 15 : 13;
  t.max_rank = 5;
  t.tile_bytes = fam == Family::older && t.name == "m9" ? (1 << 20) : (2 << 20);
  switch (fam) {
    case Family::h13: t.streams = {"int4-lut", "sparse"}; break;
    case Family::h14: t.streams = {"int4-lut", "sparse", "int8"}; break;
    case Family::h15: case Family::h16: t.streams = {"int4-lut", "sparse", "int8", "blockwise"}; break;
    default: break;
  }
  t.fp16_tflops = tflops;
  t.bandwidth_gbs = bw;
  t.dispatch_us = dispatch;
  t.layer_us = 2.0;  // [I] ~44 cycles per task descriptor plus planar-engine hand-offs
  t.rounding = std::move(rounding);
  t.sources = std::move(src) + "; " + kLimitsSrc;
  return t;
}

std::vector<Target> make_table() {
  const std::string m1 = "M1: 11 TOPS read as fp16 [I] (Apple 11 TOPS [A]); ANE bandwidth 55-61 GB/s (anemll-bench) [A]; "
                         "dispatch 190-230 us (Bryngelson, ane-guide s9) [R]";
  const std::string m2 = "M2: 15.8 TOPS [A]; ANE bandwidth 60-62 GB/s (anemll-bench) [A]; dispatch interpolated M1..M4 [I]";
  const std::string m3 = "M3: 18 TOPS [A]; ANE bandwidth 63 GB/s (M3), 120 GB/s (M3 Max) (anemll-bench) [A]; dispatch [I]";
  const std::string m4 = "M4: 38 TOPS int8 = ~19 TFLOP/s fp16 (maderix 18.6 measured) [A]; bandwidth 64 GB/s (M4), "
                         "120-126 GB/s (Pro/Max) (anemll-bench) [A]; dispatch ~90-95 us (maderix) [R]";
  const std::string m5 = "M5: fp16 conv roof 18.8 TFLOP/s (ANEForge, M5 Pro) [R]; bandwidth 70 GB/s (M5, anemll-bench) [A], "
                         "~145 GB/s (M5 Pro/Max, Bryngelson) [R]; dispatch 70-110 us (ANEForge) [R]";
  const std::string old = "pre-H13: MIL is only supported for H13+ (ANEForge _targets.py) [R]";
  const std::string ref = "reference targets, not silicon (ane-guide s34) [R]; MIL support unknown [?]";
  return {
      row("h11", Family::older, {"A12", "A12X", "A12Z"}, 5.0, 34, 250, "?", old),
      row("h12", Family::older, {"A13"}, 6.0, 34, 250, "?", old),
      row("m9", Family::older, {}, 1.0, 20, 250, "?", old + "; 2 NEs, 1 MiB operand limit [R/?]"),
      row("t0", Family::older, {}, 1.0, 20, 250, "?", old),
      row("h13", Family::h13, {"M1", "A14"}, 11.0, 61, 210, "nearest_even", m1),
      row("h13g", Family::h13, {"M1 Pro", "M1 Max", "M1 Ultra"}, 11.0, 55, 210, "nearest_even", m1),
      row("t1", Family::h13, {}, 11.0, 55, 210, "nearest_even", m1 + "; t1 is an H13-family variant [R]"),
      row("h14", Family::h14, {"A15"}, 15.8, 60, 150, "nearest_even", m2),
      row("h14g", Family::h14, {"M2", "M2 Pro", "M2 Max", "M2 Ultra"}, 15.8, 61, 150, "nearest_even", m2),
      row("h14c", Family::h14, {}, 15.8, 61, 150, "nearest_even", m2),
      row("h15", Family::h15, {"A16"}, 18.0, 63, 120, "nearest_away [?]", m3),
      row("h15g", Family::h15, {"M3", "M3 Pro", "M3 Max", "M3 Ultra"}, 18.0, 63, 120, "nearest_away [?]", m3),
      row("h15c", Family::h15, {}, 18.0, 120, 120, "nearest_away [?]", m3),
      row("m11", Family::h15, {}, 18.0, 63, 120, "nearest_away [?]", m3 + "; m11 is an H15-family target [R]"),
      row("h16", Family::h16, {"A17 Pro"}, 19.0, 51, 95, "nearest_away [?]", m4),
      row("h16g", Family::h16, {"M4", "M4 Pro", "M4 Max"}, 19.0, 64, 95, "nearest_away [?]", m4),
      row("h16c", Family::h16, {}, 19.0, 120, 95, "nearest_away [?]", m4),
      row("h16s", Family::h16, {}, 19.0, 64, 95, "nearest_away [?]", m4),
      row("h17", Family::h16, {"A18", "A18 Pro"}, 19.0, 60, 90, "nearest_away [?]", m5),
      row("h17a", Family::h16, {}, 19.0, 70, 90, "nearest_away [?]", m5),
      row("h17g", Family::h16, {}, 19.0, 145, 90, "nearest_away [?]", m5),
      row("h17s", Family::h16, {"M5", "M5 Pro", "M5 Max"}, 19.0, 145, 90, "nearest_away [?]",
          m5 + "; bandwidth: the M5 Pro's, where the cost anchors were measured (M5: 70 GB/s)"),
      row("h17c", Family::h16, {}, 19.0, 145, 90, "nearest_away [?]", m5),
      row("h17d", Family::h16, {}, 19.0, 145, 90, "nearest_away [?]", m5),
      row("h18", Family::h16, {"A19", "A19 Pro"}, 19.0, 68, 90, "nearest_away [?]", m5 + "; A19 = H18 unverified [?]"),
      row("u1", Family::reference, {}, 0, 0, 0, "?", ref),
      row("u2", Family::reference, {}, 0, 0, 0, "?", ref),
      row("u3", Family::reference, {}, 0, 0, 0, "?", ref),
  };
}

// Which chip -> target mappings someone observed on the chip, and which follow from a rule.
// sbryngelson/ANEForge aneforge/_targets.py: M1 == H13 and M5 == H17s were read from the
// compiled bundle's folder name (H13C.bundle, H17S.bundle; the M5 run was an M5 Pro, whose
// verified dispatch reports target h17s), M1 Max == h13g was live-validated, and M2..M4
// follow the M-series == H(generation + 12) ladder. The A-series rows are inferred.
void add_chip_evidence(std::vector<Target>& table) {
  const std::map<std::string, std::string> evidence = {
      {"h13", "M1: measured (H13C.bundle, sbryngelson/ANEForge) [R]; A14: inferred [I]"},
      {"h13g", "M1 Max: measured (live-validated h13g, sbryngelson/ANEForge) [R]; M1 Pro, M1 Ultra: inferred [I]"},
      {"h14g", "M2 family: inferred from the M-series = H(generation + 12) ladder (sbryngelson/ANEForge) [I]"},
      {"h15g", "M3 family: inferred from the M-series ladder [I]"},
      {"h16g", "M4 family: inferred from the M-series ladder; which suffix (g or s) is disputed [?]"},
      {"h17s", "M5 Pro: measured (its dispatch and H17S.bundle report h17s, sbryngelson/ANEForge) [R]; "
               "M5, M5 Max: inferred from the same generation [I]"},
  };
  for (Target& t : table) {
    auto it = evidence.find(t.name);
    if (it != evidence.end()) t.chips_evidence = it->second;
    else if (!t.chips.empty()) t.chips_evidence = "inferred [I]";
  }
}

std::string lower(std::string s) {
  std::string r;
  for (char c : s)
    if (c != ' ' && c != '-' && c != '_') r += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> t = [] {
    auto table = make_table();
    add_chip_evidence(table);
    return table;
  }();
  return t;
}

const Target& default_target() { return find_target("h16g"); }

std::string family_name(Family f) {
  switch (f) {
    case Family::older: return "pre-h13";
    case Family::h13: return "h13";
    case Family::h14: return "h14";
    case Family::h15: return "h15";
    case Family::h16: return "h16+";
    case Family::reference: return "reference";
  }
  return "?";
}

const Target& find_target(const std::string& query) {
  std::string q = lower(query);
  for (const auto& t : targets())
    if (t.name == q) return t;
  for (const auto& t : targets())
    for (const auto& c : t.chips)
      if (lower(c) == q) return t;
  std::string names;
  for (const auto& t : targets()) names += (names.empty() ? "" : ", ") + t.name;
  throw ValueError("unknown target '" + query + "'; valid targets: " + names +
                   " (or a chip name such as 'M1', 'M4 Pro', 'A17 Pro'; see af.targets())");
}

}  // namespace af
