# Fixed-point signal processing for the node, allocation-free once set up: filters (DC removal, biquad,
# decimation), windows, time-domain features (RMS, peak, crest factor, kurtosis) and a radix-2 real FFT with
# band energies. Samples are int16; coefficients Q14 (filters) or Q15 (window, twiddles). Inner loops have
# viper versions.
