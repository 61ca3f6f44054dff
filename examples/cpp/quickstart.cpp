// The quickstart from C++, without Python: build the graph, compile it for a target,
// run it on the simulator, and export the .mlpackage.
//   cmake -S . -B build/cpp -DANEFORGE_BUILD_EXAMPLES=ON && cmake --build build/cpp
//   ./build/cpp/quickstart_cpp [out.mlpackage]
#include <cmath>
#include <cstdio>
#include <random>

#include "aneforge/aneforge.h"
#include "aneforge/mil.h"
#include "aneforge/target.h"

int main(int argc, char** argv) {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> w(16 * 3 * 3 * 3), image(3 * 32 * 32);
  for (auto& v : w) v = normal(rng) / std::sqrt(27.0f);
  for (auto& v : image) v = normal(rng);

  try {
    af::Tensor x = af::input({1, 3, 32, 32}, af::DType::fp16, "image");
    af::Tensor c = af::call1("conv", {x, af::constant(w, {16, 3, 3, 3})}, {{"pad", int64_t{1}}});
    af::Tensor y = af::call1("mean", {af::call1("relu", {c})}, {{"axis", std::vector<int64_t>{2, 3}}});
    af::CompileOptions opts;
    opts.target = "M4";
    auto program = af::compile({y}, opts);
    std::printf("%s", program->summary().c_str());

    auto exe = af::backend("sim").load(program);
    std::vector<float> out(16);
    const float* in[] = {image.data()};
    float* outs[] = {out.data()};
    exe->run(in, outs);
    std::printf("output[0..3]: %.4f %.4f %.4f %.4f\n", out[0], out[1], out[2], out[3]);
    std::printf("estimated engine latency on %s: %.1f us\n", opts.target.c_str(),
                af::estimate(*program, af::find_target(opts.target)).total_us);
    if (argc > 1) {
      af::mil::write_mlpackage(af::mil::build(*program, 18), argv[1]);
      std::printf("wrote %s\n", argv[1]);
    }
  } catch (const af::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
