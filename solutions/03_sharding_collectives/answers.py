"""Reference answers to lesson 03's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 03
--problems` compares exercises/03_sharding_collectives/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: (4096 // 4) * (1024 // 2),       # elements each device holds, a count
    2: 2 * 64 * 2**20 * 7 / 8,          # bytes each device sends
    3: 2**30 * 15 / 16 / 4.5e10 * 1e3,  # time of the all-gather, ms
    4: (1023 / 1024) / (7 / 8),         # the factor (bytes at n = 1024 over bytes at n = 8)
    5: "all-reduce",                    # "all-gather", "reduce-scatter", "all-reduce", "all-to-all" or "none"
    6: 52 / (2 * 4),                    # the modelled link of one simulated device, GB/s
}
