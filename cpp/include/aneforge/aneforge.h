// ANEForge C++ API: build a lazy graph, compile it into one program, run it.
#pragma once
#include "aneforge/attrs.h"
#include "aneforge/autodiff.h"
#include "aneforge/dtype.h"
#include "aneforge/error.h"
#include "aneforge/fp16.h"
#include "aneforge/graph.h"
#include "aneforge/op.h"
#include "aneforge/parallel.h"
#include "aneforge/program.h"
#include "aneforge/runtime.h"
#include "aneforge/shape.h"

namespace af {
inline constexpr const char* kVersion = "0.1.0";
}
