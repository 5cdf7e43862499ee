"""The authors' official network (github.com/CMACH508/CLmser): `config.OFFICIAL` builds it,
`convert.py` turns their PyTorch weights into a checkpoint of ours."""
