"""The repository tests run with 8 simulated CPU devices, set before any test runs JAX.

The sharding tests need several devices. Single-device code is unaffected: an
array or a jitted function given no sharding lives and runs on device 0, as with
one device (tests/test_sharding.py checks this).
"""

from shared.devices import simulate_cpu_devices

simulate_cpu_devices(8)
