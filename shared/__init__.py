"""The course's LLM core: a pure-JAX language model and the tools to make it fast.

One module per concept; the lessons import these and never copy them. Each module's
docstring names the lesson that introduces it. The modules stand on floors: a module
imports only from its own floor or the floors below (tests/test_layers.py checks it),
so data flows one way, text -> tokens -> batches -> step -> checkpoint -> engine -> text.

    floor 0  plain data        config (settings, presets, the one Error base)
                               params (each weight described once)   data (bytes, corpus, rows)
    floor 1  the model         model (init, blocks, forward, matmul, loss)   attention
                               backward (remat, hand-written backward passes)   quant (int8)
                               sampling   sharding   collectives   kernels   flash_pallas
             measuring         hardware   timing   roofline   profiling   goodput   aot
                               host_memory   compile_options   devices   debugging   network
                               timeline
    floor 2  using the model   train (optimizer, step, loop)   pipeline   checkpoint
                               inference (the KV cache: prefill and decode through model's
                               blocks)   paged   engine (scheduler and runner)   serving_tp
                               generate   speculative (a draft proposes, the target verifies)
    floor 3  commands          train.__main__   generate.__main__   devices.__main__
                               bench (every benchmark)   course (check, the pytest plugin)
                               figures (every lesson's pictures)
"""

FLOORS = {
    0: ("config", "params", "data"),
    1: ("model", "attention", "backward", "quant", "sampling", "sharding", "collectives",
        "kernels", "flash_pallas", "hardware", "timing", "roofline", "profiling", "goodput",
        "aot", "host_memory", "compile_options", "devices", "debugging", "network", "qtrain",
        "moe", "timeline"),
    2: ("train", "pipeline", "checkpoint", "inference", "paged", "engine", "serving_tp",
        "generate", "speculative"),
    3: ("train.__main__", "generate.__main__", "devices.__main__", "bench", "course", "check",
        "figures"),
}
