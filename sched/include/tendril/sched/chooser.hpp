// tendril/sched/chooser.hpp: the Chooser seam, through which every nondeterministic choice of a
// simulated run passes (which ready callback runs next, which of several timers due at the same
// instant fires first, user-visible randomness). Policies live in sim/; recording and replay in
// trace/.
#pragma once

#include <cstdint>
#include <string>

namespace tendril {

// Chooser answers choose(n) with a number in [0, n). A schedule is the sequence of answers.
class Chooser {
 public:
  virtual ~Chooser() = default;
  // choose(n) picks one of n >= 2 alternatives; 0 is always the default (gevent's FIFO order).
  // The hub calls it only from its own thread and never with n < 2.
  virtual std::uint32_t choose(std::uint32_t n) = 0;
  // describe() names the policy and its parameters (for example "random(seed=7)"), for reports.
  virtual std::string describe() const { return "custom chooser"; }
};

}  // namespace tendril
