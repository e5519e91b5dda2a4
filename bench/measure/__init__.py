"""What every benchmark measures with: CPU accounting, service start-up and reports."""
