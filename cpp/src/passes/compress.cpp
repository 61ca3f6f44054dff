// Weight compression: the weights of conv and linear layers and embedding tables
// stored as int8 with fp16 scales (per output channel, or per block of inputs), as 4-bit
// indices into 16-entry LUTs, or sparse (a bitmask and the non-zeros, themselves fp16, int8
// or int4), and kept so through the program, its files and its MIL. Which layer gets which
// format comes from the compile options; a format the target does not stream natively is a
// TargetError naming layer, format and target.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/op.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

namespace {

// 16 fp16 centroids for `v` by k-means (Lloyd's, from quantiles), and each value's index.
void kmeans16(const float* v, int64_t n, uint16_t* lut, uint8_t* idx_out /* one per value */) {
  if (n == 0) {  // a group with nothing stored: any table
    std::fill(lut, lut + 16, uint16_t{0});
    return;
  }
  std::vector<float> sorted(v, v + n);
  std::sort(sorted.begin(), sorted.end());
  float c[16];
  for (int k = 0; k < 16; ++k) c[k] = sorted[static_cast<size_t>((2 * k + 1) * n / 32)];
  std::vector<uint8_t> idx(static_cast<size_t>(n));
  auto assign = [&] {
    // centroids sorted: the nearest is found by the midpoints
    std::sort(c, c + 16);
    for (int64_t i = 0; i < n; ++i) {
      int k = 0;
      while (k < 15 && v[i] > 0.5f * (c[k] + c[k + 1])) ++k;
      idx[static_cast<size_t>(i)] = static_cast<uint8_t>(k);
    }
  };
  for (int iter = 0; iter < 20; ++iter) {
    assign();
    double sum[16] = {0};
    int64_t cnt[16] = {0};
    for (int64_t i = 0; i < n; ++i) sum[idx[i]] += v[i], ++cnt[idx[i]];
    bool moved = false;
    for (int k = 0; k < 16; ++k)
      if (cnt[k]) {
        float m = static_cast<float>(sum[k] / static_cast<double>(cnt[k]));
        moved |= m != c[k];
        c[k] = m;
      }
    if (!moved) break;
  }
  // The LUT is stored in fp16: assign against the stored entries.
  for (int k = 0; k < 16; ++k) {
    lut[k] = float_to_half(c[k]);
    c[k] = half_to_float(lut[k]);
  }
  for (int64_t i = 0; i < n; ++i) {
    int best = 0;
    for (int k = 1; k < 16; ++k)
      if (std::fabs(v[i] - c[k]) < std::fabs(v[i] - c[best])) best = k;
    idx_out[i] = static_cast<uint8_t>(best);
  }
}


// The stored values of `w`: every element, or those the mask keeps.
std::vector<float> kept_values(const std::vector<float>& w, const PackedWeights& p) {
  std::vector<float> v;
  v.reserve(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    if (p.stored_at(static_cast<int64_t>(i))) v.push_back(w[i]);
  return v;
}

// Sets p.mask: non-zeros, less the `prune` fraction of all weights with the smallest magnitude.
void make_mask(const std::vector<float>& w, double prune, PackedWeights& p) {
  const size_t n = w.size();
  std::vector<bool> keep(n);
  for (size_t i = 0; i < n; ++i) keep[i] = w[i] != 0.0f;
  if (prune > 0) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    const size_t drop = static_cast<size_t>(std::floor(prune * static_cast<double>(n)));
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop), order.end(),
                     [&](size_t a, size_t b) { return std::fabs(w[a]) < std::fabs(w[b]); });
    for (size_t k = 0; k < drop; ++k) keep[order[k]] = false;
  }
  p.mask.assign((n + 7) / 8, 0);
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) p.mask[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
}

// Symmetric int8 of the stored values, a scale per (row, block) from the largest stored magnitude.
void quantize_int8(const std::vector<float>& w, PackedWeights& p) {
  const int64_t R = p.rows(), C = p.cols(), B = p.blocks(), per = p.block > 0 ? p.block : C;
  p.scales.resize(static_cast<size_t>(R * B));
  p.q8.clear();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = r * C + b * per;
      float amax = 0.0f;
      for (int64_t c = 0; c < per; ++c)
        if (p.stored_at(start + c)) amax = std::max(amax, std::fabs(w[static_cast<size_t>(start + c)]));
      // The scale is stored in fp16: quantize against the stored value.
      uint16_t sh = float_to_half(amax > 0.0f ? amax / 127.0f : 1.0f);
      float s = half_to_float(sh);
      if (s == 0.0f || !std::isfinite(s)) {  // below fp16's range: the smallest normal scale
        sh = float_to_half(6.103515625e-05f);
        s = half_to_float(sh);
      }
      p.scales[static_cast<size_t>(r * B + b)] = sh;
    }
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
    if (!p.stored_at(i)) continue;
    const float s = half_to_float(p.scales[static_cast<size_t>((i / C) * B + (i % C) / per)]);
    float q = std::nearbyint(w[static_cast<size_t>(i)] / s);
    p.q8.push_back(static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, q))));
  }
}

// 16-entry LUTs (per tensor or per group of rows) fitted to the stored values by k-means.
void quantize_int4(const std::vector<float>& w, PackedWeights& p) {
  const int64_t per = (p.group_rows > 0 ? p.group_rows : p.rows()) * p.cols();
  p.lut.resize(static_cast<size_t>(p.groups() * 16));
  std::vector<uint8_t> idx;
  for (int64_t g = 0; g < p.groups(); ++g) {
    std::vector<float> v;
    for (int64_t i = g * per; i < (g + 1) * per; ++i)
      if (p.stored_at(i)) v.push_back(w[static_cast<size_t>(i)]);
    std::vector<uint8_t> gi(v.size());
    kmeans16(v.data(), static_cast<int64_t>(v.size()), &p.lut[static_cast<size_t>(g * 16)], gi.data());
    idx.insert(idx.end(), gi.begin(), gi.end());
  }
  p.q4.assign((idx.size() + 1) / 2, 0);
  for (size_t i = 0; i < idx.size(); ++i) p.q4[i / 2] |= static_cast<uint8_t>(idx[i] << (i % 2 ? 4 : 0));
}

std::shared_ptr<PackedWeights> pack(const std::vector<float>& w, const Shape& shape, const CompressFormat& f) {
  auto p = std::make_shared<PackedWeights>();
  p->format = f.packed_format();
  p->shape = shape;
  p->block = f.kind == "int8" ? f.n : 0;
  p->group_rows = f.kind == "int4" ? f.n : 0;
  if (f.sparse) make_mask(w, f.prune, *p);
  if (f.kind == "int8") {
    quantize_int8(w, *p);
  } else if (f.kind == "int4") {
    quantize_int4(w, *p);
  } else {
    for (float x : kept_values(w, *p)) p->nz16.push_back(float_to_half(x));
  }
  return p;
}

double relative_error(const std::vector<float>& w, const PackedWeights& pk) {
  std::vector<float> back(w.size());
  pk.dequantize(back.data());
  double num = 0, den = 0;
  for (size_t i = 0; i < back.size(); ++i) {
    double o = w[i], dlt = back[i] - o;
    num += dlt * dlt;
    den += o * o;
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

std::string join(const std::vector<std::string>& v) {
  std::string r;
  for (const auto& x : v) r += (r.empty() ? "" : ", ") + x;
  return r.empty() ? "none" : r;
}

}  // namespace

std::string CompressFormat::packed_format() const {
  if (!sparse) return kind;
  return kind.empty() ? "sparse" : "sparse+" + kind;
}

CompressFormat parse_compress_format(const std::string& f, const std::string& layer) {
  CompressFormat r;
  if (f.empty() || f == "fp16") return r;
  auto fail = [&]() -> CompressFormat {
    throw ValueError("compile: layer '" + layer + "': compression format '" + f +
                     "' is not supported (fp16, int8, int8:<block>, int4, int4:<rows per LUT>, sparse, "
                     "sparse:<fraction pruned>, and sparse[:<fraction>]+int8[:<block>] or +int4[:<rows>])");
  };
  auto number = [&](const std::string& s, bool fraction) -> double {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (...) {
      fail();
    }
    if (used != s.size() || !(fraction ? (v > 0 && v < 1) : (v >= 1 && v == std::floor(v) && v < 1e9))) fail();
    return v;
  };
  std::string values = f;
  if (f.rfind("sparse", 0) == 0) {
    r.sparse = true;
    size_t plus = f.find('+');
    std::string sp = f.substr(0, plus);
    if (sp.size() > 6) {
      if (sp[6] != ':') fail();
      r.prune = number(sp.substr(7), true);
    }
    values = plus == std::string::npos ? "" : f.substr(plus + 1);
    if (plus != std::string::npos && values.empty()) fail();
  }
  if (values.empty()) return r;
  for (const char* kind : {"int8", "int4"}) {
    std::string k = kind;
    if (values == k) {
      r.kind = k;
      return r;
    }
    if (values.rfind(k + ":", 0) == 0) {
      r.kind = k;
      r.n = static_cast<int64_t>(number(values.substr(5), false));
      return r;
    }
  }
  return fail();
}

void compress_weights(Program& p, const CompileOptions& o) {
  if (o.compress.empty() && o.compress_layers.empty()) return;
  parse_compress_format(o.compress, "(default)");
  const Target& t = find_target(o.target.empty() ? "h16g" : o.target);
  auto streams = [&](const std::string& what) { return std::find(t.streams.begin(), t.streams.end(), what) != t.streams.end(); };
  for (const auto& [name, f] : o.compress_layers) parse_compress_format(f, name);
  for (const auto& s : p.steps) {
    const std::string& op = s.node->op->name;
    // conv and linear weights and embedding tables take the default format (docs/compression.md)
    if ((op != "conv" && op != "linear" && op != "embedding") || s.in.size() < 2) continue;
    Value& w = p.values[s.in[1]];
    if (!w.data || w.data->packed || numel(w.type.shape) < 16) continue;
    auto it = o.compress_layers.find(s.node->name);
    const std::string& f = it != o.compress_layers.end() ? it->second : o.compress;
    CompressFormat fmt = parse_compress_format(f, s.node->name);
    if (fmt.none()) continue;
    const std::string where = "compile: layer '" + s.node->name + "' (" + op + " " + shape_str(w.type.shape) + "): ";
    std::vector<std::string> needs;
    if (fmt.sparse) needs.push_back("sparse");
    if (fmt.kind == "int4") needs.push_back("int4-lut");
    if (fmt.kind == "int8") needs.push_back("int8");
    if (fmt.kind == "int8" && fmt.n > 0) needs.push_back("blockwise");
    for (const auto& need : needs)
      if (!streams(need))
        throw TargetError(where + "format " + f + " needs the target to stream " + need + " weights; " + t.name +
                          " streams " + join(t.streams) + " (docs/compression.md)");
    std::string misfit;
    if (fmt.kind == "int4" && fmt.n > 0 && w.type.shape[0] % fmt.n) misfit = "rows";
    if (fmt.kind == "int8" && fmt.n > 0) {
      int64_t cols = numel(w.type.shape) / w.type.shape[0], kernel = 1;
      for (size_t i = 2; i < w.type.shape.size(); ++i) kernel *= w.type.shape[i];
      if (fmt.n % kernel || cols % fmt.n) misfit = "block";
    }
    std::string enc = f;
    if (!misfit.empty() && it == o.compress_layers.end()) {
      // The default format's block or LUT rows do not fit this layer: per channel (int8) or
      // per tensor (int4) instead, and the layer's encoding says which.
      fmt.n = 0;
      enc = f.substr(0, f.find(':', f.find("int")));
    }
    if (fmt.kind == "int4" && fmt.n > 0 && w.type.shape[0] % fmt.n)
      throw ValueError(where + std::to_string(fmt.n) + " rows per LUT do not divide its " + std::to_string(w.type.shape[0]) +
                       " output channels");
    if (fmt.kind == "int8" && fmt.n > 0) {
      int64_t cols = numel(w.type.shape) / w.type.shape[0], kernel = 1;
      for (size_t i = 2; i < w.type.shape.size(); ++i) kernel *= w.type.shape[i];
      if (fmt.n % kernel)
        throw ValueError(where + "block " + std::to_string(fmt.n) + " must be a multiple of its " + std::to_string(kernel) +
                         "-element kernel (a block spans whole kernels)");
      if (cols % fmt.n)
        throw ValueError(where + "block " + std::to_string(fmt.n) + " does not divide its " + std::to_string(cols) +
                         " inputs per output channel");
    }
    std::shared_ptr<PackedWeights> pk;
    if (auto given = o.packed_layers.find(s.node->name); given != o.packed_layers.end()) {
      const PackedWeights& g = *given->second;
      std::string bad = g.check();
      if (bad.empty() && g.shape != w.type.shape) bad = "shape " + shape_str(g.shape) + " is not the weight's";
      if (bad.empty() && (g.format != fmt.packed_format() || g.block != (fmt.kind == "int8" ? fmt.n : 0) ||
                          g.group_rows != (fmt.kind == "int4" ? fmt.n : 0)))
        bad = "it is packed as " + g.format + ", not as " + f;
      if (!bad.empty()) throw ValueError(where + "the packed weight given for it does not fit: " + bad);
      pk = std::const_pointer_cast<PackedWeights>(given->second);  // shared with its giver (another program of the same model) while it is the same weight
    } else {
      pk = pack(w.data->values.to_vector(), w.type.shape, fmt);
    }
    // Rounding error against the pruned weight; pruning's own error apart (it was asked for).
    std::vector<float> kept = w.data->values.to_vector();
    double pruned = 0, total = 0;
    for (size_t i = 0; i < kept.size(); ++i) {
      total += static_cast<double>(kept[i]) * kept[i];
      if (!pk->stored_at(static_cast<int64_t>(i))) pruned += static_cast<double>(kept[i]) * kept[i], kept[i] = 0.0f;
    }
    const double prune_error = total > 0 ? std::sqrt(pruned / total) : 0.0, rel_error = relative_error(kept, *pk);
    if (pk->prune_error != prune_error || pk->rel_error != rel_error) {  // another weight: its own copy
      if (o.packed_layers.count(s.node->name)) pk = std::make_shared<PackedWeights>(*pk);
      pk->prune_error = prune_error;
      pk->rel_error = rel_error;
    }
    auto d = std::make_shared<ConstData>();
    d->packed = std::move(pk);
    w.data = std::move(d);
    w.encoding = enc;
  }
}

}  // namespace af
