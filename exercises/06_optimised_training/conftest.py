"""These exercises run on 8 simulated CPU devices, set before any JAX operation."""

from shared.devices import simulate_cpu_devices

simulate_cpu_devices(8)
