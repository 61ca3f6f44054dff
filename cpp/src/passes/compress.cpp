// Weight compression: the weights of conv and linear layers (and embedding tables when named)
// stored as int8 with fp16 scales
// (per output channel, or per block of inputs), and kept so through the program, its files
// and its MIL. Which layer gets which format comes from the compile options; a format the
// target does not stream natively is a TargetError naming layer, format and target.
#include <algorithm>
#include <cmath>

#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/op.h"
#include "aneforge/target.h"
#include "passes/passes.h"

namespace af {

namespace {

std::shared_ptr<PackedWeights> quantize_int8(const std::vector<float>& w, const Shape& shape, int64_t block) {
  auto p = std::make_shared<PackedWeights>();
  p->format = "int8";
  p->shape = shape;
  p->block = block;
  const int64_t R = p->rows(), C = p->cols(), B = p->blocks(), per = block > 0 ? block : C;
  p->q8.resize(w.size());
  p->scales.resize(static_cast<size_t>(R * B));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t b = 0; b < B; ++b) {
      const float* src = w.data() + r * C + b * per;
      float amax = 0.0f;
      for (int64_t c = 0; c < per; ++c) amax = std::max(amax, std::fabs(src[c]));
      // The scale is stored in fp16: quantize against the stored value.
      uint16_t sh = float_to_half(amax > 0.0f ? amax / 127.0f : 1.0f);
      float s = half_to_float(sh);
      if (s == 0.0f || !std::isfinite(s)) {  // below fp16's range: the smallest normal scale
        sh = float_to_half(6.103515625e-05f);
        s = half_to_float(sh);
      }
      p->scales[static_cast<size_t>(r * B + b)] = sh;
      for (int64_t c = 0; c < per; ++c) {
        float q = std::nearbyint(src[c] / s);
        p->q8[static_cast<size_t>(r * C + b * per + c)] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, q)));
      }
    }
  return p;
}

// 16 fp16 centroids for `v` by k-means (Lloyd's, from quantiles), and each value's index.
void kmeans16(const float* v, int64_t n, uint16_t* lut, uint8_t* idx_out /* one per value */) {
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

std::shared_ptr<PackedWeights> quantize_int4(const std::vector<float>& w, const Shape& shape, int64_t group_rows) {
  auto p = std::make_shared<PackedWeights>();
  p->format = "int4";
  p->shape = shape;
  p->group_rows = group_rows;
  const int64_t n = static_cast<int64_t>(w.size()), per = (group_rows > 0 ? group_rows : p->rows()) * p->cols();
  p->lut.resize(static_cast<size_t>(p->groups() * 16));
  std::vector<uint8_t> idx(static_cast<size_t>(n));
  for (int64_t g = 0; g < p->groups(); ++g) kmeans16(w.data() + g * per, per, &p->lut[static_cast<size_t>(g * 16)], &idx[g * per]);
  p->q4.assign(static_cast<size_t>((n + 1) / 2), 0);
  for (int64_t i = 0; i < n; ++i) p->q4[static_cast<size_t>(i / 2)] |= static_cast<uint8_t>(idx[i] << (i % 2 ? 4 : 0));
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

struct Format {
  std::string kind;  // "", "int8", "int4"
  int64_t n = 0;     // int8: block (0 per channel); int4: rows per LUT (0 per tensor)
};

// "int8", "int8:<block>", "int4", "int4:<rows>"; "" or "fp16" -> none.
Format parse_format(const std::string& f, const std::string& layer) {
  if (f.empty() || f == "fp16") return {};
  for (const char* kind : {"int8", "int4"}) {
    std::string k = kind;
    if (f == k) return {k, 0};
    if (f.rfind(k + ":", 0) == 0) {
      try {
        int64_t b = std::stoll(f.substr(5));
        if (b >= 1) return {k, b};
      } catch (...) {
      }
    }
  }
  throw ValueError("compile: layer '" + layer + "': compression format '" + f +
                   "' is not supported (fp16, int8, int8:<block>, int4, int4:<rows per LUT>)");
}

}  // namespace

void compress_weights(Program& p, const CompileOptions& o) {
  if (o.compress.empty() && o.compress_layers.empty()) return;
  parse_format(o.compress, "(default)");
  const Target& t = find_target(o.target.empty() ? "h16g" : o.target);
  auto streams = [&](const std::string& what) { return std::find(t.streams.begin(), t.streams.end(), what) != t.streams.end(); };
  for (const auto& [name, f] : o.compress_layers) parse_format(f, name);
  for (const auto& s : p.steps) {
    const std::string& op = s.node->op->name;
    // conv and linear weights take the default format; an embedding table only when named
    // (its rows are looked up exactly, and it is often the most sensitive weight).
    bool named_only = op == "embedding";
    if ((op != "conv" && op != "linear" && !named_only) || s.in.size() < 2) continue;
    Value& w = p.values[s.in[1]];
    if (!w.data || w.data->packed || numel(w.type.shape) < 16) continue;
    auto it = o.compress_layers.find(s.node->name);
    if (named_only && it == o.compress_layers.end()) continue;
    const std::string& f = it != o.compress_layers.end() ? it->second : o.compress;
    Format fmt = parse_format(f, s.node->name);
    if (fmt.kind.empty()) continue;
    const int64_t block = fmt.kind == "int8" ? fmt.n : 0;
    const char* needs = fmt.kind == "int4" ? "int4-lut" : block > 0 ? "blockwise" : "int8";
    if (!streams(needs) || (fmt.kind == "int8" && !streams("int8")))
      throw TargetError("compile: layer '" + s.node->name + "' (" + op + " " + shape_str(w.type.shape) + "): format " + f +
                        " needs the target to stream " + needs + " weights; " + t.name + " streams " +
                        (t.streams.empty() ? std::string("none") : [&] {
                          std::string r;
                          for (const auto& x : t.streams) r += (r.empty() ? "" : ", ") + x;
                          return r;
                        }()) + " (docs/compression.md)");
    auto d = std::make_shared<ConstData>();
    if (fmt.kind == "int4") {
      if (fmt.n > 0 && w.type.shape[0] % fmt.n)
        throw ValueError("compile: layer '" + s.node->name + "': " + std::to_string(fmt.n) + " rows per LUT do not divide its " +
                         std::to_string(w.type.shape[0]) + " output channels");
      auto pk = quantize_int4(w.data->values, w.type.shape, fmt.n);
      pk->rel_error = relative_error(w.data->values, *pk);
      d->packed = std::move(pk);
      w.data = std::move(d);
      w.encoding = f;
      continue;
    }
    int64_t cols = numel(w.type.shape) / w.type.shape[0], kernel = 1;
    for (size_t i = 2; i < w.type.shape.size(); ++i) kernel *= w.type.shape[i];
    if (block > 0 && block % kernel)
      throw ValueError("compile: layer '" + s.node->name + "': block " + std::to_string(block) + " must be a multiple of its " +
                       std::to_string(kernel) + "-element kernel (a block spans whole kernels)");
    if (block > 0 && cols % block)
      throw ValueError("compile: layer '" + s.node->name + "': block " + std::to_string(block) + " does not divide its " +
                       std::to_string(cols) + " inputs per output channel");
    auto pk = quantize_int8(w.data->values, w.type.shape, block);
    pk->rel_error = relative_error(w.data->values, *pk);
    d->packed = std::move(pk);
    w.data = std::move(d);
    w.encoding = block > 0 ? "int8:" + std::to_string(block) : "int8";
  }
}

}  // namespace af
