// The engine runtime against the doubles of its APIs (tests/doubles): the e5rt path and the
// in-memory path, loaded through the same dlopen code the real frameworks are. The doubles
// compute from the MIL text and weight blob they are handed (read back by tests/doubles/
// mil_reader.h and run by the simulator), so results must equal the sim bit for bit.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "aneforge/aneforge.h"
#include "aneforge/durable.h"
#include "aneforge/engine.h"
#include "aneforge/mil.h"
#include "aneforge/target.h"
#include "../../tests/doubles/mil_reader.h"
#include "../../tests/doubles/mil_signature.h"

using namespace af;

namespace {

std::string& last_compute_error() {
  static std::string e;
  return e;
}

// The double's compute function: the program read back from the MIL text and weight blob
// the double was handed (tests/doubles/mil_reader.h), run by the simulator. A wrong blob or
// a wrong op in what the runtime hands the engine changes the result.
int sim_compute(const char* mil_text, const void* weights, uint64_t weights_len, int n_in, const char* const* in_names,
                const void* const* in_ptrs, const uint64_t* in_bytes, int n_out, const char* const* out_names,
                void* const* out_ptrs, const uint64_t* out_bytes) {
  try {
    dbl::MilGraph g = dbl::read_mil(mil_text, std::string(static_cast<const char*>(weights), weights_len));
    std::vector<HostTensor> ins(g.inputs.size());
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      ins[i].shape = g.inputs[i].second.shape();
      ins[i].data.resize(numel(ins[i].shape));
      int k = 0;
      while (k < n_in && g.inputs[i].first != in_names[k]) ++k;
      if (k == n_in || in_bytes[k] != 2 * ins[i].data.size()) return 1;
      halves_to_floats(static_cast<const uint16_t*>(in_ptrs[k]), ins[i].data.data(), ins[i].data.size());
    }
    std::vector<Tensor> outs;
    for (auto& [_, t] : g.outputs) outs.push_back(t);
    CompileOptions o;
    for (auto& [_, t] : g.inputs) o.inputs.push_back(t);
    auto results = run_sim(compile(outs, o), ins);
    for (size_t j = 0; j < results.size(); ++j) {
      int k = 0;
      while (k < n_out && g.outputs[j].first != out_names[k]) ++k;
      if (k == n_out || out_bytes[k] != 2 * results[j].data.size()) return 1;
      floats_to_halves(results[j].data.data(), static_cast<uint16_t*>(out_ptrs[k]), results[j].data.size());
    }
    return 0;
  } catch (const std::exception& e) {
    last_compute_error() = e.what();
    return 1;
  }
}

// conv + relu + a second output: a program with weights and two inputs.
std::shared_ptr<const Program> conv_program(unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> w(4 * 3 * 3 * 3);
  for (auto& v : w) v = d(g);
  Tensor x = input({1, 3, 8, 8}, DType::fp16, "image");
  Tensor b = input({1, 4, 8, 8}, DType::fp16, "bias");
  Tensor y = call1("relu", {call1("conv", {x, constant(w, {4, 3, 3, 3})}, {{"pad", int64_t{1}}})});
  return compile({y, call1("add", {y, b})});
}

struct Double {
  void* h = nullptr;
  explicit Double(const char* path) : h(dlopen(path, RTLD_NOW | RTLD_LOCAL)) {}
  template <class Fn>
  Fn fn(const char* name) const {
    return reinterpret_cast<Fn>(dlsym(h, name));
  }
  void reset() const { fn<void (*)()>("af_double_reset")(); fn<void (*)(dbl::ComputeFn)>("af_double_set_compute")(sim_compute); }
  std::string violations() const { return fn<const char* (*)()>("af_double_violations")(); }
  std::string log() const { return fn<const char* (*)()>("af_double_log")(); }
  int live() const { return fn<int (*)()>("af_double_live")(); }
  int calls(const char* f) const { return fn<int (*)(const char*)>("af_double_calls")(f); }
  void fail(const char* f, int code, const char* msg, int nth = 0) const {
    fn<void (*)(const char*, int, const char*, int)>("af_double_fail")(f, code, msg, nth);
  }
};

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string path = GetParam();
    cache_ = std::filesystem::temp_directory_path() / ("af_engine_" + std::to_string(getpid()));
    setenv("ANEFORGE_CACHE", cache_.c_str(), 1);
    setenv("ANEFORGE_TARGET", "h16g", 1);
    unsetenv("ANEFORGE_ENGINE_MAX_LOADED");
    if (path == "e5rt") {
      setenv("ANEFORGE_ENGINE_E5RT", AF_E5RT_DOUBLE, 1);
      setenv("ANEFORGE_ENGINE_PATH", "e5rt", 1);
      dbl_ = std::make_unique<Double>(AF_E5RT_DOUBLE);
    } else {
      setenv("ANEFORGE_ENGINE_OBJC", AF_OBJC_DOUBLE, 1);
      setenv("ANEFORGE_ENGINE_PATH", "inmemory", 1);
      dbl_ = std::make_unique<Double>(AF_OBJC_DOUBLE);
      std::filesystem::create_directories(cache_ / "tmp");
      dbl_->fn<void (*)(const char*)>("af_double_set_tmpdir")((cache_ / "tmp").string().append("/").c_str());
    }
    ASSERT_NE(dbl_->h, nullptr);
    dbl_->reset();
  }
  void TearDown() override {
    EXPECT_EQ(dbl_->violations(), "") << "the double recorded protocol violations";
    std::filesystem::remove_all(cache_);
  }

  std::shared_ptr<const Program> program(unsigned seed = 1) { return conv_program(seed); }

  std::vector<std::vector<float>> run(Executable& e, std::vector<std::vector<float>> ins) {
    const Program& p = e.program();
    std::vector<const float*> ip;
    for (auto& v : ins) ip.push_back(v.empty() ? nullptr : v.data());
    std::vector<std::vector<float>> outs;
    std::vector<float*> op;
    for (int v : p.outputs) outs.emplace_back(numel(p.values[v].type.shape));
    for (auto& o : outs) op.push_back(o.data());
    e.run(ip.data(), op.data());
    return outs;
  }

  std::vector<float> random(size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
  }

  std::filesystem::path cache_;
  std::unique_ptr<Double> dbl_;
};

TEST_P(EngineTest, ResultsEqualTheSimulatorThroughTheRealDispatchCode) {
  auto p = program();
  auto eng = backend("engine").load(p);
  auto sim = backend("sim").load(p);
  for (unsigned s = 0; s < 3; ++s) {
    std::vector<std::vector<float>> ins = {random(3 * 64, s), random(4 * 64, s + 10)};
    auto a = run(*eng, ins), b = run(*sim, ins);
    ASSERT_EQ(a, b);
  }
  EXPECT_EQ(dbl_->violations(), "");
}

TEST_P(EngineTest, EveryObjectIsReleasedOnceAndNothingLeaks) {
  {
    auto eng = backend("engine").load(program());
    run(*eng, {random(3 * 64, 1), random(4 * 64, 2)});
    EXPECT_GT(dbl_->live(), 0);
  }
  EXPECT_EQ(dbl_->live(), 0);
  EXPECT_EQ(dbl_->violations(), "");
  EXPECT_EQ(engine::loaded_programs(), 0);
}

TEST_P(EngineTest, ResidentStateStaysInOneBuffer) {
  Tensor x = input({1, 64}, DType::fp16, "state");
  Tensor y = call1("add", {x, scalar(1.0)});
  auto p = compile({y});
  mil::Program m = mil::build(*p, 18);
  for (const char* be : {"sim", "engine"}) {
    auto e = backend(be).load(p);
    e->alias(0, 0);
    EXPECT_THROW(run(*e, {{}}), ValueError) << be << ": a resident input needs a first value";
    auto out = run(*e, {std::vector<float>(64, 0.0f)});
    for (int k = 2; k <= 4; ++k) out = run(*e, {{}});
    EXPECT_EQ(out[0], std::vector<float>(64, 4.0f)) << be;
    if (std::string(be) == "engine" && GetParam() == "e5rt") {
      EXPECT_EQ(dbl_->fn<int (*)(const char*, const char*)>("af_double_shared")(m.main.inputs[0].first.c_str(),
                                                                               m.main.outputs[0].c_str()), 1);
    }
  }
  EXPECT_EQ(dbl_->violations(), "");
  EXPECT_EQ(dbl_->live(), 0);
}

// Two programs reading one held input: writes through either seen by both, across the load
// cap unloading the owner (and so its reader), and after the owner is freed. Run under the
// sanitizers, this is where a port left on a released buffer would show.
TEST_P(EngineTest, ASharedInputIsOneBufferAcrossUnloadsAndTheOwnersRelease) {
  Tensor c = input({1, 64}, DType::fp16, "cache");
  auto owner = backend("engine").load(compile({call1("mul", {c, scalar(2.0)})}));
  auto reader = backend("engine").load(compile({call1("mul", {c, scalar(3.0)})}));
  reader->share_input(0, *owner, 0);
  EXPECT_EQ(dbl_->fn<int (*)()>("af_double_shared_input_buffers")(), 1);
  std::vector<float> row(64);
  for (int k = 0; k < 64; ++k) row[k] = static_cast<float>(k % 7);
  auto expect = [&](Executable& e, float times, const char* when) {
    auto out = run(e, {{}});
    for (int k = 0; k < 64; ++k) ASSERT_EQ(out[0][k], times * row[k]) << when << " " << k;
  };
  owner->write_rows(0, 1, 0, 64, row.data());
  expect(*reader, 3.0f, "written through the owner");
  row[5] = 100.0f;
  reader->write_rows(0, 1, 5, 1, &row[5]);
  expect(*owner, 2.0f, "written through the reader");
  setenv("ANEFORGE_ENGINE_MAX_LOADED", "2", 1);
  engine::set_warning_handler([](const std::string&) {});
  auto other = backend("engine").load(program(3));  // the owner (least recently used) goes, and its reader
  run(*other, {random(3 * 64, 1), random(4 * 64, 2)});
  expect(*reader, 3.0f, "after the load cap");
  EXPECT_EQ(dbl_->fn<int (*)()>("af_double_shared_input_buffers")(), 1);
  owner.reset();
  expect(*reader, 3.0f, "after the owner was freed");
  engine::set_warning_handler(nullptr);
  unsetenv("ANEFORGE_ENGINE_MAX_LOADED");
  reader.reset();
  other.reset();
  EXPECT_EQ(dbl_->live(), 0);
}

TEST_P(EngineTest, TheLoadCapUnloadsTheLeastRecentlyUsedWithAWarning) {
  setenv("ANEFORGE_ENGINE_MAX_LOADED", "2", 1);
  std::vector<std::string> warnings;
  engine::set_warning_handler([&](const std::string& w) { warnings.push_back(w); });
  std::vector<std::shared_ptr<const Program>> ps;
  std::vector<std::unique_ptr<Executable>> exes;
  for (unsigned s = 1; s <= 3; ++s) {
    ps.push_back(program(s));
    exes.push_back(backend("engine").load(ps.back()));
  }
  EXPECT_EQ(engine::loaded_programs(), 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("least recently used"), std::string::npos);
  // The unloaded first program loads again on its next call, and is still right.
  std::vector<std::vector<float>> ins = {random(3 * 64, 5), random(4 * 64, 6)};
  EXPECT_EQ(run(*exes[0], ins), run(*backend("sim").load(ps[0]), ins));
  EXPECT_EQ(warnings.size(), 2u);
  EXPECT_EQ(engine::loaded_programs(), 2);
  engine::set_warning_handler(nullptr);
  unsetenv("ANEFORGE_ENGINE_MAX_LOADED");
  exes.clear();
  EXPECT_EQ(dbl_->live(), 0);
  EXPECT_EQ(dbl_->violations(), "");
}

TEST_P(EngineTest, ACompileFailureWithNoMessageSaysWhatWasCompiledAndLeaksNothing) {
  bool e5 = GetParam() == "e5rt";
  dbl_->fail(e5 ? "e5rt_e5_compiler_compile" : "compileWithQoS:options:error:", 5, e5 ? "" : "<nil>");
  try {
    backend("engine").load(program());
    FAIL() << "no error";
  } catch (const EngineError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(e5 ? "no message" : "no NSError"), std::string::npos) << m;
    EXPECT_NE(m.find("model.mil"), std::string::npos) << m;
    EXPECT_NE(m.find("h16g"), std::string::npos) << m;
  }
  EXPECT_EQ(dbl_->live(), 0);
  EXPECT_EQ(dbl_->violations(), "");
}

TEST_P(EngineTest, AFailureAtRunTimeIsAnEngineErrorWithTheEnginesMessage) {
  bool e5 = GetParam() == "e5rt";
  auto eng = backend("engine").load(program());
  dbl_->fail(e5 ? "e5rt_execution_stream_execute_sync" : "evaluateWithQoS:options:request:error:", 8,
             "ANEProgramProcessRequestDirect() Failed with status=0x1d", 1);
  try {
    run(*eng, {random(3 * 64, 1), random(4 * 64, 2)});
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("status=0x1d"), std::string::npos) << e.what();
  }
  auto ok = run(*eng, {random(3 * 64, 1), random(4 * 64, 2)});  // the next call works
  EXPECT_EQ(ok.size(), 2u);
}

TEST_P(EngineTest, TheEnginesOwnLoadLimitIsReported) {
  if (GetParam() == "e5rt") dbl_->fn<void (*)(int)>("af_double_set_load_cap")(0);
  else dbl_->fn<void (*)(int)>("af_double_set_load_cap")(0);
  try {
    backend("engine").load(program());
    FAIL() << "no error";
  } catch (const EngineError& e) {
    std::string m = e.what();
    EXPECT_TRUE(m.find("(13)") != std::string::npos || m.find("load failure") != std::string::npos) << m;
  }
  EXPECT_EQ(dbl_->live(), 0);
}

TEST_P(EngineTest, NoUseAfterFork) {
  auto eng = backend("engine").load(program());
  pid_t pid = fork();
  if (pid == 0) {
    try {
      run(*eng, {random(3 * 64, 1), random(4 * 64, 2)});
      _exit(1);
    } catch (const EngineError& e) {
      _exit(std::string(e.what()).find("posix_spawn") != std::string::npos ? 0 : 2);
    } catch (...) {
      _exit(3);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_P(EngineTest, AProgramForANewerFamilyIsRefusedOnAnOlderEngine) {
  setenv("ANEFORGE_TARGET", "h13", 1);
  EXPECT_THROW(backend("engine").load(program()), EngineError);
  setenv("ANEFORGE_TARGET", "h16g", 1);
}

TEST_P(EngineTest, TheDoubleComputesFromTheBlobItIsHanded) {
  // The mutation the equality tests must catch: a byte of the blob the engine gets is wrong.
  dbl_->fn<void (*)(int)>("af_double_corrupt_weights")(1);
  auto p = program(77);
  auto eng = backend("engine").load(p);
  std::vector<std::vector<float>> ins = {random(3 * 64, 3), random(4 * 64, 4)};
  EXPECT_NE(run(*eng, ins), run(*backend("sim").load(p), ins));
}

TEST_P(EngineTest, ACorruptedCacheFileIsRewrittenBeforeTheEngineCompilesIt) {
  auto p = program(78);
  std::vector<std::vector<float>> ins = {random(3 * 64, 5), random(4 * 64, 6)};
  auto want = run(*backend("sim").load(p), ins);
  backend("engine").load(p).reset();
  int corrupted = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(cache_))
    if (f.path().filename() == "weight.bin") {
      std::string bytes = io::read_file(f.path().string(), 1 << 20);
      bytes.back() ^= 0x40;
      io::write_file(f.path().string(), bytes, [](const std::string&) { return true; });
      ++corrupted;
    }
  if (GetParam() == "e5rt") {
    EXPECT_EQ(corrupted, 1) << "the e5rt path keeps its program files in the cache";
  }
  EXPECT_EQ(run(*backend("engine").load(p), ins), want);
}

INSTANTIATE_TEST_SUITE_P(Paths, EngineTest, ::testing::Values("e5rt", "inmemory"),
                         [](const auto& info) { return info.param; });

// The e5rt double in a cache of its own, and a one-layer program it can compute.
struct E5rtSetup {
  std::filesystem::path cache;
  Double d{AF_E5RT_DOUBLE};
  std::shared_ptr<const Program> p;
  E5rtSetup(const char* target, const std::string& tag) {
    setenv("ANEFORGE_ENGINE_E5RT", AF_E5RT_DOUBLE, 1);
    setenv("ANEFORGE_ENGINE_PATH", "e5rt", 1);
    setenv("ANEFORGE_TARGET", target, 1);
    cache = std::filesystem::temp_directory_path() / ("af_engine_" + tag + "_" + std::to_string(getpid()));
    setenv("ANEFORGE_CACHE", cache.c_str(), 1);
    d.reset();
    Tensor x = input({1, 8}, DType::fp16, "x");
    p = compile({call1("relu", {x})});
  }
  ~E5rtSetup() { std::filesystem::remove_all(cache); }
};

TEST(EngineProtocol, E5rtCallOrderMaskAndTarget) {
  E5rtSetup setup("M4", "proto");
  const auto& cache = setup.cache;
  const Double& d = setup.d;
  const auto& p = setup.p;
  auto bundles = [&] {
    std::vector<std::string> found;
    for (auto& e : std::filesystem::recursive_directory_iterator(cache))
      if (e.path().parent_path().filename() == "e5bundle") found.push_back(e.path().filename().string());
    return found;
  };
  {
    auto e = backend("engine").load(p);
    std::vector<float> in(8, 1.0f), out(8);
    const float* ip[] = {in.data()};
    float* op[] = {out.data()};
    for (int k = 0; k < 3; ++k) e->run(ip, op);
    // The bundle folder is this process's own, created before the compile.
    auto b = bundles();
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].rfind(std::to_string(getpid()) + "-", 0), 0u) << b[0];
  }
  EXPECT_TRUE(bundles().empty()) << "the bundle folder goes with the program";
  EXPECT_EQ(d.fn<uint64_t (*)()>("af_double_last_mask")(), 0x4u);
  // Compiled for the host: no TargetArchitecture (the target table only gates).
  EXPECT_EQ(std::string(d.fn<const char* (*)()>("af_double_last_custom_options")()), "");
  EXPECT_EQ(d.calls("e5rt_execution_stream_encode_operation"), 1);
  EXPECT_EQ(d.calls("e5rt_execution_stream_execute_sync"), 3);
  std::string log = d.log();
  auto at = [&](const char* f) { return log.find(f); };
  EXPECT_LT(at("e5rt_e5_compiler_compile"), at("e5rt_program_library_retain_program_function"));
  EXPECT_LT(at("e5rt_io_port_bind_buffer_object"), at("e5rt_execution_stream_encode_operation"));
  EXPECT_LT(at("bind_completion_event"), at("e5rt_execution_stream_encode_operation"));
  EXPECT_LT(at("e5rt_e5_compiler_release"), at("e5rt_execution_stream_encode_operation"))
      << "the compiler objects go once the operation exists";
  EXPECT_LT(at("e5rt_execution_stream_release"), at("e5rt_program_library_release")) << "stream first, library last";
  EXPECT_EQ(d.violations(), "");
  EXPECT_EQ(d.live(), 0);
}

TEST(EngineProtocol, PortDescriptorsAreCheckedAtLoad) {
  E5rtSetup setup("h16g", "desc");
  const Double& d = setup.d;
  const auto& p = setup.p;
  backend("engine").load(p);  // agrees: loads
  EXPECT_EQ(d.calls("e5rt_io_port_retain_tensor_desc"), 2);  // the input and the output
  d.fn<void (*)(const char*, uint64_t)>("af_double_set_port_element_size")("x", 4);
  try {
    backend("engine").load(p);
    FAIL() << "a port the engine describes as fp32 was accepted";
  } catch (const EngineError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("input port 'x'"), std::string::npos) << m;
    EXPECT_NE(m.find("4-byte elements"), std::string::npos) << m;
  }
  EXPECT_EQ(d.violations(), "");
  EXPECT_EQ(d.live(), 0) << "everything released after the refusal";
}

// The reader the doubles compute with: what it reads is what the emitter wrote, and a changed
// byte or op in the text or blob changes the result or is refused.
TEST(MilReader, AWrongBlobOrAWrongOpChangesTheResultOrIsRefused) {
  auto p = conv_program(5);
  mil::Program m = mil::build(*p, 18);
  const std::string text = mil::to_text(m), blob = m.weights.bytes;
  std::vector<HostTensor> ins(2);
  for (int i = 0; i < 2; ++i) {
    ins[i].shape = p->values[p->inputs[i]].type.shape;
    std::mt19937 g(9 + i);
    std::normal_distribution<float> d;
    for (int64_t k = 0; k < numel(ins[i].shape); ++k) ins[i].data.push_back(d(g));
  }
  auto read_and_run = [&](const std::string& t, const std::string& b) {
    dbl::MilGraph g = dbl::read_mil(t, b);
    std::vector<Tensor> outs, inputs;
    for (auto& [_, x] : g.outputs) outs.push_back(x);
    for (auto& [_, x] : g.inputs) inputs.push_back(x);
    CompileOptions o;
    o.inputs = inputs;
    std::vector<std::vector<float>> r;
    for (auto& h : run_sim(compile(outs, o), ins)) r.push_back(h.data);
    return r;
  };
  std::vector<std::vector<float>> want;
  for (auto& h : run_sim(p, ins)) want.push_back(h.data);
  EXPECT_EQ(read_and_run(text, blob), want);
  std::string flipped = blob;
  flipped.back() ^= 0x40;
  EXPECT_NE(read_and_run(text, flipped), want);
  auto refused = [&](const std::string& t, const std::string& b, const std::string& why) {
    try {
      read_and_run(t, b);
      ADD_FAILURE() << "read: " << why;
    } catch (const dbl::MilReadError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  std::string no_sentinel = blob;
  no_sentinel[64] ^= 1;
  refused(text, no_sentinel, "has no sentinel");
  refused(text, blob.substr(0, blob.size() - 2), "outside the blob");
  refused(text, "", "outside a blob of 0 bytes");
  auto swap_op = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_NE(read_and_run(swap_op("= relu(", "= sigmoid("), blob), want);
  refused(swap_op("= relu(", "= softmax("), blob, "op 'softmax' is not read");
  refused(swap_op("groups = groups, ", ""), blob, "parameter 'groups' missing");
}

// The doubles refuse what the engine's MIL compiler refuses: int32 or bool ports and int32
// compute. What we emit, index programs included, has neither.
TEST(EngineDoubles, IntegerComputeIsRefusedAndNeverEmitted) {
  EXPECT_NE(dbl::integer_compute("    func main<ios18>(tensor<int32, [4]> ids) {\n"), "");
  EXPECT_NE(dbl::integer_compute("    func main<ios18>(tensor<fp16, [4]> x) {\n        tensor<int32, [4]> y = cast(dtype = d, x = x)[name = string(\"y\")];\n"), "");
  EXPECT_EQ(dbl::integer_compute("        tensor<int32, [2]> shape = const()[name = string(\"shape\"), val = tensor<int32, [2]>([1, 2])];\n"), "");
  Tensor ids = input({2, 3}, DType::int32, "ids");
  Tensor rows = call1("embedding", {ids, constant(std::vector<float>(3000 * 4, 0.5f), {3000, 4})});
  Tensor hot = call1("one_hot", {ids}, {{"num_classes", int64_t{3000}}});
  Tensor best = call1("argmax", {call1("sum", {rows}, {{"dim", std::vector<int64_t>{-1}}})}, {{"dim", int64_t{-1}}});
  auto p = compile({rows, hot, best, call1("greater", {rows, scalar(0.0)})});
  for (int opset : {17, 18}) EXPECT_EQ(dbl::integer_compute(mil::to_text(mil::build(*p, opset))), "") << opset;
}

TEST(EngineProbe, UnavailableWithoutTheLibrariesSaysWhy) {
  setenv("ANEFORGE_ENGINE_E5RT", "/nonexistent/Espresso", 1);
  setenv("ANEFORGE_ENGINE_OBJC", "/nonexistent/objc", 1);
  unsetenv("ANEFORGE_ENGINE_PATH");
  auto d = engine::probe();
  EXPECT_FALSE(d.available);
  EXPECT_NE(d.reason.find("/nonexistent/Espresso"), std::string::npos) << d.reason;
  Tensor x = input({1, 8});
  EXPECT_THROW(backend("engine").load(compile({call1("relu", {x})})), EngineError);
  unsetenv("ANEFORGE_ENGINE_OBJC");
}

TEST(EngineProbe, TheTargetComesFromTheChipName) {
  std::string note;
  EXPECT_EQ(engine::target_for_chip("Apple M1", &note), find_target("M1").name);
  EXPECT_EQ(engine::target_for_chip("Apple M4 Pro", &note), find_target("M4 Pro").name);
  EXPECT_EQ(engine::target_for_chip("Apple M4", &note), "h16g");
  // sbryngelson/ANEForge's verified M5 Pro run reports h17s.
  EXPECT_EQ(engine::target_for_chip("Apple M5 Pro", &note), "h17s");
  EXPECT_EQ(engine::target_for_chip("Apple M5", &note), "h17s");
  EXPECT_EQ(engine::target_for_chip("Intel(R) Core(TM) i7", &note), "");
  EXPECT_EQ(engine::target_for_chip("Apple M99", &note), "");
  EXPECT_NE(note.find("ANEFORGE_TARGET"), std::string::npos);
}

TEST(EngineLayout, PortsAndSurfaces) {
  auto p = engine::make_port("x", DType::fp16, {1, 3, 5});
  EXPECT_EQ(p.bytes, 30u);
  EXPECT_EQ(p.alloc_bytes, 64u);
  auto q = engine::make_port("y", DType::fp32, {1, 100});
  EXPECT_EQ(q.alloc_bytes, 448u);
  EXPECT_EQ(engine::surface_bytes({p, q}), 49152u);
  auto big = engine::make_port("z", DType::fp16, {1, 64, 1, 1024});
  EXPECT_EQ(engine::surface_bytes({p, big}), 131072u);
  auto order = engine::alphabetical_order({q, p, big});
  EXPECT_EQ(order, (std::vector<size_t>{1, 0, 2}));
  EXPECT_THROW(engine::make_port("b", DType::boolean, {1}), UnsupportedError);
}

}  // namespace
