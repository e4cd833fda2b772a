"""`edgegen replay`: recordings (load) through virtual nodes that run the firmware's NodeApp (run)."""
