"""Gradient-flow analysis of the CLmser family (Sec. 4.2, Eq. 7-15) and the classic Lmser."""
