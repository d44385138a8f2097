// SPDX-License-Identifier: Apache-2.0
// tendril/sched/detail/observe.hpp (internal): how sched/ reads the observer hook. A build
// configured with -DTENDRIL_TRACE_HOOK=OFF (bench/run.sh makes one, to measure what the hook
// costs) compiles every hook point away.
#pragma once

#include "tendril/sched/observer.hpp"

#ifdef TENDRIL_NO_OBSERVER_HOOK
#define TENDRIL_OBSERVER(hub) (static_cast<::tendril::Observer*>(nullptr))
#else
#define TENDRIL_OBSERVER(hub) ((hub)->observer_)
#endif
