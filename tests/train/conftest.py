"""One torch thread: these tests share two cores with other jobs, and OpenMP
threads spinning on an oversubscribed machine are far slower than one."""

import torch

torch.set_num_threads(1)
