"""The UIN terminal client shipped with the gateway (``uin-client``)."""
