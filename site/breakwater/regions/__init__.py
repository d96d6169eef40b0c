"""The province -> city -> district cascade (GB/T 2260 codes), its API and the address picker."""
