"""Teaching: the convolution playground of the Concepts page and the plain script behind a run."""
