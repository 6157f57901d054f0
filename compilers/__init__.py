"""The drivers shipped with nativeimport, installed as ``nativeimport.compilers``.

Each uses only the public driver API and is registered in the
``nativeimport.compilers`` entry-point group, exactly as a third-party driver.
"""
