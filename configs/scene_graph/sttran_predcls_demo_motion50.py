# sttran_predcls_demo_motion.py with the displacements 5x larger: in the
# demo a walker moves 1.5-3 % of the frame width between kept frames, so
# motion_scale=10 gives inputs of 0.15-0.3 and 50 gives 0.75-1.5.
_base_ = ['./sttran_predcls_demo_motion.py']

model = dict(motion_scale=50.0)
