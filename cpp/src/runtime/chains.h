// Elementwise chains: consecutive elementwise steps of one output shape that the sim runs block
// by block, each block through every step while it is in cache, instead of one pass over
// memory per step. Values used only inside a chain live in per-thread block buffers and never
// reach memory. Each element goes through the same kernels as step by step: the same bits
// (a NaN's sign aside: vector loops and their scalar tails may pass on different NaN operands).
#pragma once
#include <cstdint>
#include <vector>

#include "aneforge/program.h"

namespace af {

struct ChainOperand {
  int internal = -1;      // a chain value's block buffer, or -1: the step's own input buffer
  bool rows = false;      // advances with the block (its rows); false: read whole (broadcast)
  int64_t row_elems = 0;  // elements per row (of the rows x inner split of the chain's shape)
  Shape shape;            // its shape in a block, rows = 1 (set per block when `rows`)
};

struct ElementwiseChain {
  size_t first = 0, last = 0;          // steps first..last
  Shape out_shape;                      // a block's output shape, rows = 1
  int64_t rows = 0, inner = 0;          // the chain's shape as rows x inner elements
  int64_t rows_per_block = 0;
  std::vector<std::vector<ChainOperand>> in;  // per step, per input
  std::vector<int> out_internal;  // per step: its block buffer, -1 (its own buffer) or kChainView
  int internals = 0;
};

constexpr int kChainView = -2;  // a step the memory plan made a view: nothing runs

// Elements per block: at least the fp16 lookup tables' threshold (ops/elementwise.cpp), so a
// costly function still looks its results up inside a chain.
constexpr int64_t kChainBlock = int64_t{1} << 15;

// The chains of a program with its memory plan, none holding an `excluded` step. A chain is
// left out where running it block by block could overwrite a value a later block still
// reads: an output written into the slot of a broadcast input (the memory plan reuses a dead
// value's slot, grown to size).
std::vector<ElementwiseChain> plan_elementwise_chains(const Program& p, const std::vector<bool>& excluded = {});

}  // namespace af
