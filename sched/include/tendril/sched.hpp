// SPDX-License-Identifier: Apache-2.0
// tendril/sched.hpp: the greenlet core. Include this one header to use greenlets on any hub.
#pragma once

#include "tendril/sched/assert.hpp"
#include "tendril/sched/chooser.hpp"
#include "tendril/sched/errors.hpp"
#include "tendril/sched/event.hpp"
#include "tendril/sched/greenlet.hpp"
#include "tendril/sched/hub.hpp"
#include "tendril/sched/linkable.hpp"
#include "tendril/sched/local.hpp"
#include "tendril/sched/lock.hpp"
#include "tendril/sched/pool.hpp"
#include "tendril/sched/queue.hpp"
#include "tendril/sched/raw.hpp"
#include "tendril/sched/ref.hpp"
#include "tendril/sched/stack.hpp"
#include "tendril/sched/timeout.hpp"
#include "tendril/sched/wait.hpp"
